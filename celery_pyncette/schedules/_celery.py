"""A Celery schedule object (``solar``, a custom ``BaseSchedule``) run by its own arithmetic.

:class:`CelerySchedule` replays what Celery beat would do with the object; its spec is the object's
stable description (:mod:`celery_pyncette.schedules._celery_spec`), which cannot be rebuilt into
an object: such a schedule is declared in code and compared, never decoded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette.schedules import _celery_spec
from celery_pyncette.schedules._base import SECOND, UTC, Schedule, aware_utc

# A Celery schedule that is not due when it says it would be is re-checked when it asks; this many
# checks without a due time end the search (None: no further occurrence).
_MAX_CELERY_CHECKS = 1000
_CELERY_LOCK = threading.RLock()
_MISSING = object()


@dataclass(frozen=True, eq=False)
class CelerySchedule(Schedule):
    """A Celery schedule object (``celery.schedules.solar``, or any ``BaseSchedule`` with its own
    arithmetic), run through its own ``remaining_estimate`` and ``is_due``.

    :meth:`next_after` replays what Celery beat would do with ``last_run_at = after``: it jumps to
    ``after + remaining_estimate(after)`` (at least one second later) and, while the object's
    ``is_due`` says "not yet", waits as long as it asks (at least one second), with the object's
    clock pinned to each instant considered; after 1000 checks without a due time it gives up with
    ``None``. Its spec is a stable description, not its ``repr`` (see the module documentation;
    ValueError when it has none); equal specs, equal wrappers; :func:`schedule_from_spec` cannot
    rebuild one.
    """

    schedule: Any

    def __post_init__(self) -> None:
        missing = [
            name
            for name in ("remaining_estimate", "is_due")
            if not callable(getattr(self.schedule, name, None))
        ]
        if missing:
            raise ValueError(
                f"{type(self.schedule).__name__} is not a Celery schedule: no {', '.join(missing)}"
            )
        self.to_spec()  # refuses, naming why, a schedule that cannot be described stably

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CelerySchedule):
            return NotImplemented
        return self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))  # describe() builds it in a fixed order

    def first_run(self, now: datetime) -> datetime | None:
        """The first occurrence strictly after ``now``."""
        return self.next_after(now)

    def next_after(self, after: datetime) -> datetime | None:
        after = aware_utc(after, "after")
        with _CELERY_LOCK:
            return self._replay_beat(after)

    def to_spec(self) -> dict[str, Any]:
        with _CELERY_LOCK:  # not while _replay_beat has pinned the object's clock
            return _celery_spec.describe(self.schedule)

    @property
    def description(self) -> str:
        return f"celery {_celery_spec.label(self.schedule)}"

    def _replay_beat(self, last_run_at: datetime) -> datetime | None:
        obj = self.schedule
        clock = [last_run_at]
        saved = vars(obj).get("nowfun", _MISSING)
        obj.nowfun = lambda: clock[0]
        try:
            candidate = last_run_at + max(
                _as_timedelta(obj.remaining_estimate(last_run_at)), SECOND
            )
            for _ in range(_MAX_CELERY_CHECKS):
                clock[0] = candidate
                due, wait = obj.is_due(last_run_at)
                if due:
                    return candidate.astimezone(UTC)
                candidate += max(_as_timedelta(wait), SECOND)
        except OverflowError:
            return None
        finally:
            if saved is _MISSING:
                del obj.nowfun
            else:
                obj.nowfun = saved
        return None


def _as_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return timedelta(seconds=value)
    raise ValueError(f"a Celery schedule returned {value!r} where a duration was expected")
