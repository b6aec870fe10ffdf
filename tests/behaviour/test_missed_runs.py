"""Theme 2, missed runs: Pyncette's ``test_catches_up_with_stale_executions`` and its three
``fast_forward`` variants.

Pyncette replays every missed occurrence by default, and drops them with ``fast_forward=True``.
Ours coalesces by default (the occurrences that fell before a run started are covered by it; those
that fell while it ran become one run, the latest of them) and replays with ``catch_up=True``.
So Pyncette's default is our ``catch_up=True``, and its ``fast_forward=True`` matches our default
except after a long successful run, where we run the coalesced slot once and Pyncette drops it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, FailureMode, Pyncette
from celery_pyncette.testing import Execution, simulate, sleep
from tests.behaviour import T0, finishes, outcomes, sched, starts


def _first_run_stalls(
    pyncette: Pyncette, total: float, *, fail: bool, **options: Any
) -> list[Execution]:
    """Declare a static task whose first execution sleeps 10 s (then raises when ``fail``) and
    whose later executions return at once; simulate ``total`` seconds; return its executions."""
    calls = 0

    @pyncette.task(**options)
    def stalls(context: Context) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            sleep(10)
            if fail:
                raise RuntimeError("stalled")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=total))
        return sim.executions(stalls)


def test_catches_up_with_stale_executions_coalesced_by_default(pyncette: Pyncette) -> None:
    """Pyncette: after the first run (+2) stalls 10 s and fails (UNLOCK), every missed occurrence
    is replayed, one per tick: +2, +4, ..., +18, 10 executions in 20 s.

    Ours differs on purpose (default ``catch_up=False``): the retry of +2 at t=12 covers the
    occurrences that fell before it started (+4 ... +12), and the schedule goes on from there."""
    runs = _first_run_stalls(
        pyncette, 20, fail=True, interval=timedelta(seconds=2), failure_mode=FailureMode.UNLOCK
    )

    assert sched(runs) == [2, 2, 14, 16, 18, 20]
    assert starts(runs) == [2, 12, 14, 16, 18, 20]
    assert outcomes(runs) == ["failed"] + ["success"] * 5
    assert str(runs[0].error) == "stalled"


def test_catches_up_with_stale_executions_with_catch_up(pyncette: Pyncette) -> None:
    """Pyncette: after the first run (+2) stalls 10 s and fails (UNLOCK), every missed occurrence
    is replayed, one per tick: +2, +4, ..., +18, 10 executions in 20 s.

    Ours with ``catch_up=True`` (Pyncette's default policy): the same 10 executions, one per
    1 s poll from t=12."""
    runs = _first_run_stalls(
        pyncette,
        20,
        fail=True,
        interval=timedelta(seconds=2),
        failure_mode=FailureMode.UNLOCK,
        catch_up=True,
    )

    assert sched(runs) == [2, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert starts(runs) == [2, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert outcomes(runs) == ["failed"] + ["success"] * 9


@pytest.mark.parametrize(
    "timing",
    [{"interval": timedelta(seconds=3)}, {"schedule": "* * * * * */3"}],
    ids=["interval", "cron"],
)
def test_does_not_catch_up_with_stale_executions_if_fast_forward_used(
    pyncette: Pyncette, timing: dict[str, Any]
) -> None:
    """Pyncette (``..._if_fast_forward_used`` and ``..._cronspec``): with ``fast_forward=True``,
    every 3 s, the first run (+3) stalls 10 s and fails (UNLOCK): it is retried at t=13, then the
    schedule resumes on its grid after now: +3, +3, +15, +18.

    Ours gives the same with the default (coalescing), no option needed: the retry at 13 covers
    +6 ... +12."""
    runs = _first_run_stalls(pyncette, 20, fail=True, failure_mode=FailureMode.UNLOCK, **timing)

    assert sched(runs) == [3, 3, 15, 18]
    assert starts(runs) == [3, 13, 15, 18]
    assert outcomes(runs) == ["failed", "success", "success", "success"]


@pytest.mark.parametrize(
    "timing",
    [{"interval": timedelta(seconds=3)}, {"schedule": "* * * * * */3"}],
    ids=["interval", "cron"],
)
def test_stale_executions_replayed_with_catch_up(
    pyncette: Pyncette, timing: dict[str, Any]
) -> None:
    """Pyncette (default, no ``fast_forward``): a stalled, failed first run (+3) is retried at
    t=13, then every missed occurrence is replayed one per tick.

    Ours with ``catch_up=True``: +3 retried at 13, then +6, +9, +12, +15, +18 one per poll."""
    runs = _first_run_stalls(
        pyncette, 20, fail=True, failure_mode=FailureMode.UNLOCK, catch_up=True, **timing
    )

    assert sched(runs) == [3, 3, 6, 9, 12, 15, 18]
    assert starts(runs) == [3, 13, 14, 15, 16, 17, 18]


def test_fast_forward_cronspec_coalesced_by_default(pyncette: Pyncette) -> None:
    """Pyncette: with ``fast_forward=True``, every 3 s, a first run (+3) that takes 10 s and
    succeeds drops the slots that fell while it ran (+6, +9, +12): +3, +15, +18.

    Ours differs on purpose (default, coalescing): those slots become one run, due at once when
    the long one ends (t=13), with the latest of them as its ``scheduled_at`` (+12); then +15,
    +18. A slot missed while a run was busy is run once, never silently dropped."""
    runs = _first_run_stalls(pyncette, 20, fail=False, schedule="* * * * * */3")

    assert sched(runs) == [3, 12, 15, 18]
    assert starts(runs) == [3, 13, 15, 18]
    assert finishes(runs)[0] == 13
    assert outcomes(runs) == ["success"] * 4


def test_fast_forward_cronspec_replayed_with_catch_up(pyncette: Pyncette) -> None:
    """Pyncette (default, no ``fast_forward``): a 10 s first run (+3) is followed by every slot
    that fell meanwhile, one per tick.

    Ours with ``catch_up=True``: +6, +9, +12 replayed at t=13, 14, 15; then +15 at 16 and +18 on
    time."""
    runs = _first_run_stalls(pyncette, 20, fail=False, schedule="* * * * * */3", catch_up=True)

    assert sched(runs) == [3, 6, 9, 12, 15, 18]
    assert starts(runs) == [3, 13, 14, 15, 16, 18]


def test_fast_forward_is_not_an_option_here(pyncette: Pyncette) -> None:
    """Pyncette: ``fast_forward=True`` drops the missed occurrences.

    Ours has no such option (the default coalesces, see above): passing it is a ``ValueError``
    that says so, not a silent ``context.args["fast_forward"]``."""
    with pytest.raises(ValueError, match=r"fast_forward.*catch_up"):

        @pyncette.task(interval=timedelta(seconds=3), fast_forward=True)
        def stale(context: Context) -> None: ...
