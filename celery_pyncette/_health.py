"""One beat's health verdict, as its ``GET /healthz`` answers it (served by ``_health_server``).

The verdict joins two checks:

* what this process knows without I/O, updated by beat's tick: its ticks are failing, or no
  tick has ended for :func:`stuck_after` (a tick hangs on a store that stopped answering), or
  none has ended yet since start-up;
* what ``celery pyncette status`` would say about this beat, by the same rule
  (:func:`celery_pyncette._registry.beat_problems`), from this beat's record in the store: the
  record is missing or stale, or the store cannot be read.

The store is read at most once per poll interval, on a thread of its own, and only when a
probe asks: a probe waits at most :data:`ANSWER_WITHIN` for a read in flight, then answers from
the last one, so a store that hangs never hangs the probe (a read unanswered for
:func:`stuck_after` is a problem itself). Safe to use from any number of threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from celery_pyncette import _registry as registry
from celery_pyncette.stores.base import Store

logger = logging.getLogger("celery_pyncette.health")

#: Ticks that may pass without one ending before beat counts as stuck ...
STUCK_POLLS = 10
#: ... but never fewer seconds than this, the registry's report period: a short poll interval
#: must not make a slow store write look like a hang, and a tick that takes longer than this
#: keeps beat from refreshing its record on time anyway.
STUCK_AT_LEAST = registry.REPORT_EVERY.total_seconds()
#: The longest a probe waits for a store read it started.
ANSWER_WITHIN = 0.5
#: Reasons are cut to this many characters (an exception message can be long).
REASON_LIMIT = 300


def stuck_after(poll_interval: float) -> float:
    """Seconds without a tick ending (or a store read answering) that make beat unhealthy."""
    return max(STUCK_POLLS * poll_interval, STUCK_AT_LEAST)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Healthy when there are no problems; each problem is one line a person can act on."""

    problems: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def body(self) -> str:
        """``healthy``, or ``unhealthy`` followed by one problem per line."""
        if self.healthy:
            return "healthy\n"
        return "unhealthy\n" + "".join(f"{problem}\n" for problem in self.problems)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


class BeatHealth:
    """The verdict of the beat whose lease owner is ``owner``.

    Beat calls :meth:`tick_succeeded` / :meth:`tick_failed` after every tick; probes call
    :meth:`verdict`. ``store`` and ``now`` (the store's clock) are only called on the reading
    thread; ``monotonic`` measures every age (tests drive it).
    """

    def __init__(
        self,
        owner: str,
        store: Callable[[], Store],
        now: Callable[[], datetime],
        poll_interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        self.owner = owner
        self._store = store
        self._now = now
        self._poll_interval = poll_interval
        self._stuck_after = stuck_after(poll_interval)
        self._monotonic = monotonic
        self._answer_within = answer_within
        self._lock = threading.Lock()
        self._started = monotonic()
        self._tick_ended: float | None = None
        self._succeeded = False  # this beat's record exists from its first successful tick on
        self._failures = 0
        self._last_error = ""
        self._read_at: float | None = None  # when the last finished read started
        self._read_problems: tuple[str, ...] = ()
        self._reading: threading.Thread | None = None
        self._reading_since = 0.0

    def tick_succeeded(self) -> None:
        with self._lock:
            self._tick_ended = self._monotonic()
            self._failures = 0
            self._succeeded = True

    def tick_failed(self, exc: BaseException) -> None:
        with self._lock:
            self._tick_ended = self._monotonic()
            self._failures += 1
            self._last_error = _describe(exc)

    def verdict(self) -> Verdict:
        """This beat's verdict now; reads the store only when the last read is a poll interval
        old (and never waits on it longer than ``answer_within``)."""
        reader = self._start_read()
        if reader is not None:
            reader.join(self._answer_within)
        with self._lock:
            now = self._monotonic()
            problems = self._local_problems(now)
            if not self._succeeded:
                return Verdict(tuple(problems))  # no record is expected before a tick succeeds
            if self._reading is not None and now - self._reading_since > self._stuck_after:
                waited = now - self._reading_since
                problems.append(f"the store has not answered a health read for {waited:.0f}s")
            problems.extend(self._read_problems)
            return Verdict(tuple(problems))

    def _local_problems(self, now: float) -> list[str]:
        problems = []
        if self._failures:
            problems.append(
                f"beat's ticks are failing: {self._failures} in a row, last: {self._last_error}"
            )
        if self._tick_ended is None:
            since = now - self._started
            if since > self._stuck_after:
                problems.append(f"no tick has ended since beat started {since:.0f}s ago")
            else:
                problems.append(
                    f"beat has not completed its first tick yet (started {since:.0f}s ago)"
                )
        elif (silent := now - self._tick_ended) > self._stuck_after:
            problems.append(
                f"beat's last tick ended {silent:.0f}s ago (more than {self._stuck_after:g}s: "
                "a tick hangs, or beat stopped ticking)"
            )
        return problems

    def _start_read(self) -> threading.Thread | None:
        """A new reading thread when a read is due and none is in flight (else ``None``)."""
        with self._lock:
            now = self._monotonic()
            if not self._succeeded or self._reading is not None:
                return None
            if self._read_at is not None and now - self._read_at < self._poll_interval:
                return None
            self._reading_since = now
            self._reading = threading.Thread(
                target=self._read, args=(now,), name="pyncette-health-read", daemon=True
            )
            reader = self._reading
        reader.start()
        return reader

    def _read(self, started: float) -> None:
        try:
            beats = registry.list_beats(self._store())
            problems = registry.beat_problems(beats, self._now(), self.owner)
        except Exception as exc:  # any failure to read is the verdict, never the probe's crash
            logger.debug("health read of the store failed", exc_info=True)
            problems = [f"the store cannot be read: {_describe(exc)}"]
        with self._lock:
            self._read_at = started
            self._read_problems = tuple(problems)
            self._reading = None
