"""Organizations, staff, studies, review, matching, invitations and the recruitment funnel."""
