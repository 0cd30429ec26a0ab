"""Interest a resident registers from a study's public page (invitations.express_interest):
the contact consent, pause and the recruitment period are respected, a change of mind is
allowed, and the study team is told exactly as after an answered invitation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from brygga import clock
from brygga.db import session as db_session
from brygga.errors import InputError
from brygga.registry import consent, service
from brygga.registry.models import Resident
from brygga.studies import invitations, outbox, registration, staff
from brygga.studies.models import Invitation, OutboxMessage
from tests.web.conftest import study_form


@pytest.fixture
def world(site):
    with db_session(site["url"]) as s:
        study = registration.get_study(s, site["ids"]["study"])
        person = service.by_personnummer(s, site["people"][4]["personnummer"])
        resident = service.register(s, person)
        return {"url": site["url"], "study": study.id, "resident": resident.id}


def test_needs_the_contact_consent_and_an_active_account(world):
    with db_session(world["url"]) as s:
        resident = s.get(Resident, world["resident"])
        study = registration.get_study(s, world["study"])
        with pytest.raises(InputError, match="consent to be contacted"):
            invitations.express_interest(s, resident, study)
        consent.record_consent(s, resident, "contact", True, text_version="2026-1")
        service.pause(s, resident, True)
        with pytest.raises(InputError, match="paused"):
            invitations.express_interest(s, resident, study)
        assert s.scalar(select(Invitation).where(Invitation.resident_id == resident.id)) is None


def test_interest_tells_the_team_and_a_change_of_mind_is_allowed(world):
    with db_session(world["url"]) as s:
        resident = s.get(Resident, world["resident"])
        study = registration.get_study(s, world["study"])
        consent.record_consent(s, resident, "contact", True, text_version="2026-1")
        first = invitations.express_interest(s, resident, study)
        assert (first.status, first.basis) == ("interested", "own_initiative")
        team = s.scalars(
            select(OutboxMessage).where(OutboxMessage.template == outbox.TEAM_INTEREST)
        )
        assert [m.payload["study"] for m in team] == [study.id]
        assert invitations.express_interest(s, resident, study).id == first.id  # idempotent
        first.status = "declined"
        s.flush()
        again = invitations.express_interest(s, resident, study)
        assert again.id == first.id and again.status == "interested"


def test_a_study_outside_its_recruitment_period_is_refused(world, site):
    with db_session(world["url"]) as s:
        resident = s.get(Resident, world["resident"])
        consent.record_consent(s, resident, "contact", True, text_version="2026-1")
        researcher = staff.get(s, site["accounts"]["researcher"])
        office = staff.get(s, site["accounts"]["research_office"])
        data = {k: v for k, v in study_form().items() if not k.startswith("site_")}
        data["sites"] = [{"name": "SUS", "municipality_code": "1281"}]
        data["recruitment_start"] = (clock.today() + timedelta(days=10)).isoformat()
        future = registration.create_study(s, researcher, data)
        registration.submit(s, researcher, future)
        registration.review(s, office, future, approve=True)
        with pytest.raises(InputError, match="not recruiting"):
            invitations.express_interest(s, resident, future)
