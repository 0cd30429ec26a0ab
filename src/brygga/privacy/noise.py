"""Noisy feasibility counts (as the German Medical Informatics Initiative and i2b2 do).

In noisy mode every count of a feasibility answer gets Laplace (or Gaussian) noise from OpenDP's
vetted samplers, is rounded (default: to 10) and shown as ``<threshold`` when it lands between
1 and the threshold. The answer is cached in the operational database per (criteria
fingerprint, cell, true count, noise settings), so asking again returns the same answer and
averaging repeated answers learns nothing. The cache key is a hash; the true count is not
stored. Each noisy count comes with its expected error: the half-width of a 95 % interval
(OpenDP's accuracy for the noise, plus half the rounding step). A feasibility table (count,
attrition, breakdowns) also gets secondary suppression (``NoisyPolicy`` with
``suppression.protect``).

Asking slightly *different* questions draws fresh noise each time, and averaging those can
still recover a count: ``brygga feasibility --noise`` requests are rate-limited per user
(default 60 per hour), and the web's questions pass the question guard (``privacy.questions``:
budgets, rate limit, sweep refusal).

Configuration: ``BRYGGA_NOISE_*`` (``NoiseSettings``); ``brygga feasibility --noise laplace``.
"""

from __future__ import annotations

__all__ = [
    "MECHANISMS",
    "Calibrated",
    "NoisyCounts",
    "NoisyPolicy",
    "calibrate",
    "check_rate_limit",
    "current_user",
    "guarded_noise",
    "load_noise_settings",
    "noise_step",
    "noisy_request",
    "opendp",
    "privacy_loss",
]

import getpass
import hashlib
import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from brygga import clock
from brygga.config import NoiseSettings, get_settings, settings_error
from brygga.errors import InputError, PermissionDenied
from brygga.privacy.disclosure import SECONDARY
from brygga.util import lazy_module

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Imported on first use, for start-up time: exact counts (the common question) need no database.
sa = lazy_module("sqlalchemy")
db_session = lazy_module("brygga.db.session")
models = lazy_module("brygga.privacy.models")

MECHANISMS = ("laplace", "gaussian")


def load_noise_settings(**overrides: Any) -> NoiseSettings:
    """The noise settings of the one settings tree, with command-line overrides applied."""
    base = get_settings().noise
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return base
    try:
        return NoiseSettings.model_validate(base.model_dump() | given)
    except ValidationError as exc:
        raise settings_error(exc, "noise") from None


# --- OpenDP helpers (also used by budget.py) -------------------------------------------------


def opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")  # OpenDP files its noise mechanisms under "contrib"
    return dp


def noise_step(dp: Any, mechanism: str, scale: float) -> Any:
    """The ``then_`` noise measurement to chain after a transformation."""
    if mechanism == "laplace":
        return dp.m.then_laplace(scale=scale)
    if mechanism == "gaussian":
        return dp.m.then_gaussian(scale=scale)
    raise InputError(f"noise must be one of {', '.join(MECHANISMS)}, not {mechanism!r}")


def privacy_loss(dp: Any, measurement: Any, mechanism: str, delta: float) -> tuple[float, float]:
    """(epsilon, delta) of a measurement when one person is added or removed."""
    if mechanism == "laplace":
        return float(measurement.map(1)), 0.0
    if not 0 < delta < 1:
        raise InputError("Gaussian noise needs a delta in (0, 1)")
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(measurement), delta)
    epsilon, fixed = approx.map(1)
    return float(epsilon), float(fixed)


@dataclass(frozen=True)
class Calibrated:
    measurement: Any
    epsilon: float
    delta: float
    scale: float


def calibrate(
    dp: Any, build: Callable[[float], Any], mechanism: str, epsilon: float, delta: float
) -> Calibrated:
    """``build(scale)`` with the least noise whose privacy loss (per OpenDP) is <= epsilon."""
    if not epsilon > 0:
        raise InputError(f"epsilon must be positive, not {epsilon}")
    low, high = 1e-6, 1e6
    for _ in range(80):  # bisection on a log scale: a larger scale loses less privacy
        mid = (low * high) ** 0.5
        if privacy_loss(dp, build(mid), mechanism, delta)[0] > epsilon:
            low = mid
        else:
            high = mid
    measurement = build(high)
    spent_epsilon, spent_delta = privacy_loss(dp, measurement, mechanism, delta)
    return Calibrated(measurement, spent_epsilon, spent_delta, high)


# --- Noisy feasibility counts ----------------------------------------------------------------


@dataclass
class NoisyCounts:
    """Discloses counts with cached noise; one instance per request."""

    mechanism: str
    epsilon: float = 0.5
    delta: float = 1e-6
    rounding: int = 10
    threshold: int = 8
    url: str | None = None
    raw: bool = False
    _measurement: Any = field(default=None, repr=False)
    _scale: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise InputError(
                f"--noise must be one of {', '.join(MECHANISMS)}, not {self.mechanism!r}"
            )
        dp = opendp()
        space = dp.atom_domain(T=int), dp.absolute_distance(T=int)

        def build(scale: float) -> Any:
            return space >> noise_step(dp, self.mechanism, scale)

        calibrated = calibrate(dp, build, self.mechanism, self.epsilon, self.delta)
        self._measurement, self._scale = calibrated.measurement, calibrated.scale

    @classmethod
    def from_settings(
        cls, settings: NoiseSettings, mechanism: str, threshold: int, url: str | None = None
    ) -> NoisyCounts:
        return cls(mechanism, settings.epsilon, settings.delta, settings.rounding, threshold, url)

    @property
    def error95(self) -> float:
        """Half-width of the 95 % interval around the true count: noise plus rounding."""
        dp = opendp()
        if self.mechanism == "laplace":
            accuracy = dp.discrete_laplacian_scale_to_accuracy(self._scale, 0.05)
        else:
            accuracy = dp.discrete_gaussian_scale_to_accuracy(self._scale, 0.05)
        return round(float(accuracy) + self.rounding / 2, 1)

    @property
    def description(self) -> str:
        extra = f", delta {self.delta:g}" if self.mechanism == "gaussian" else ""
        return (
            f"{self.mechanism} noise (epsilon {self.epsilon:g}{extra}) rounded to "
            f"{self.rounding}, results below {self.threshold} suppressed; 95 % of answers "
            f"within ±{self.error95:g} of the truth"
        )

    def info(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta if self.mechanism == "gaussian" else 0.0,
            "rounding": self.rounding,
            "error95": self.error95,
        }

    def _key(self, fingerprint: str, cell: str, count: int) -> str:
        text = "|".join(
            map(str, (fingerprint, cell, count, self.mechanism, self.epsilon,
                      self.delta if self.mechanism == "gaussian" else 0, self.rounding))
        )  # fmt: skip
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _noisy(self, count: int) -> int:
        value = int(self._measurement(int(count)))
        step = self.rounding
        return max(0, step * ((value + step // 2) // step))

    def values(
        self, fingerprint: str, counts: Mapping[Any, int], session: Session | None = None
    ) -> dict[Any, int]:
        """Each named count with its noise, rounded, from the cache or drawn and cached (the
        same question gets the same answer). ``session``: the caller's write transaction (the
        web's request); without one a write session of its own."""
        keys = {cell: self._key(fingerprint, str(cell), n) for cell, n in counts.items()}
        with (
            nullcontext(session) if session is not None else db_session.write_session(self.url) as s
        ):
            cached = dict(
                s.execute(
                    sa.select(models.NoisyAnswer.key, models.NoisyAnswer.value).where(
                        models.NoisyAnswer.key.in_(list(keys.values()))
                    )
                ).all()
            )
            for cell, key in keys.items():
                if key not in cached:
                    cached[key] = self._noisy(counts[cell])
                    s.add(models.NoisyAnswer(key=key, value=cached[key]))
            s.flush()
        return {cell: cached[key] for cell, key in keys.items()}

    def disclose(self, fingerprint: str, counts: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        """Each named count, noisy and cached; a noisy count from 1 to threshold-1 is shown
        ``<threshold``. For a table with totals use ``policy()`` with ``suppression.protect``
        instead (cohort.feasibility does), which also protects cells from subtraction."""
        policy = self.policy()
        noisy = self.values(fingerprint, counts)
        return {cell: policy.apply(counts[cell], noisy[cell]) for cell in counts}

    def policy(self) -> NoisyPolicy:
        """These noisy counts as a disclosure policy for ``suppression.protect``: pass each
        cell's noisy value (``values``) as its cell key."""
        return NoisyPolicy(self.threshold, self.error95, self.description)


@dataclass(frozen=True)
class NoisyPolicy:
    """The disclosure policy of cached noisy counts, for secondary suppression: a cell's
    "cell key" is its noisy value. A noisy value from 1 to threshold-1 is suppressed; a cell
    given no noisy value (one that is never published, such as the people a rule removes) is
    judged by its true count, so a small one is protected from subtraction."""

    threshold: int
    error95: float
    description: str
    raw: bool = False

    @property
    def needs_record_keys(self) -> bool:
        return False

    @property
    def spread(self) -> int:
        return math.ceil(self.error95)

    def apply(self, count: int, cell_key: float | None = None) -> dict[str, Any]:
        value = count if cell_key is None else int(cell_key)
        if 0 < value < self.threshold:
            return {"value": None, "display": f"<{self.threshold}", "error95": self.error95}
        return {"value": value, "display": str(value), "error95": self.error95}

    def interval(self, disclosed: dict[str, Any]) -> tuple[int, int | None]:
        """What a reader learns of the true count (95 % of the time) from a disclosed value."""
        value = disclosed["value"]
        if value is None:
            if disclosed["display"] == SECONDARY:
                return (0, None)
            return (0, self.threshold - 1 + self.spread)
        return (max(0, value - self.spread), value + self.spread)


def check_rate_limit(user: str, settings: NoiseSettings, *, url: str | None = None) -> int:
    """Record one feasibility request by ``user``, or refuse it past the limit; returns how
    many requests are left in the window."""
    now = clock.now()
    since = now - timedelta(minutes=settings.rate_window_minutes)
    with db_session.write_session(url) as s:
        rows = s.execute(
            sa.select(sa.func.count(), sa.func.min(models.FeasibilityRequest.at)).where(
                models.FeasibilityRequest.user == user, models.FeasibilityRequest.at > since
            )
        ).one()
        used, oldest = int(rows[0]), rows[1]
        if used >= settings.rate_limit:
            if oldest.tzinfo is None:  # SQLite returns naive datetimes (stored as UTC)
                oldest = oldest.replace(tzinfo=UTC)
            retry = oldest + timedelta(minutes=settings.rate_window_minutes)
            raise PermissionDenied(
                f"rate limit: at most {settings.rate_limit} feasibility requests per "
                f"{settings.rate_window_minutes} minutes per user; try again after "
                f"{retry.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            )
        s.add(models.FeasibilityRequest(user=user, at=now))
    return settings.rate_limit - used - 1


def noisy_request(
    noise: str | None, *, raw: bool = False, user: str | None = None, url: str | None = None
) -> NoisyCounts | None:
    """The noise for one feasibility request (``noise`` or else ``BRYGGA_NOISE_MECHANISM``),
    after counting it against the user's rate limit; None when noise is off."""
    settings = load_noise_settings()
    mechanism = noise or settings.mechanism
    if mechanism == "none":
        return None
    if raw:
        raise InputError("--raw and noisy counts cannot be combined")
    from brygga.db.migrate import ensure_current
    from brygga.privacy.disclosure import load_settings

    url = ensure_current(url)
    counts = NoisyCounts.from_settings(settings, mechanism, load_settings().threshold, url)
    check_rate_limit(user or current_user(), settings, url=url)
    return counts


def guarded_noise(threshold: int, url: str | None = None) -> NoisyCounts:
    """The noise for a question the question guard (``privacy.questions``) admitted, so no
    second rate limit: the configured mechanism, or Laplace when ``BRYGGA_NOISE_MECHANISM``
    is ``none`` (the web's answers on a region that is not synthetic are always noisy)."""
    settings = load_noise_settings()
    mechanism = "laplace" if settings.mechanism == "none" else settings.mechanism
    return NoisyCounts.from_settings(settings, mechanism, threshold, url)


def current_user() -> str:
    """Who is asking: ``BRYGGA_USER`` (set by the web layer or a wrapper), else the OS user."""
    return get_settings().user or getpass.getuser()
