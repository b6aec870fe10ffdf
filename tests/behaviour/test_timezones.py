"""Theme 3, time zones: Pyncette's ``test_timezone_support``."""

from __future__ import annotations

from datetime import timedelta

from celery_pyncette import Context
from celery_pyncette.testing import simulate
from tests.behaviour import T0, at
from tests.behaviour.conftest import MakePyncette


def test_timezone_support(make_pyncette: MakePyncette) -> None:
    """Pyncette: a daily ``0 0 * * *`` task fires at local midnight of fixed-offset zones
    (``UTC-6`` is 6 h behind UTC, as dateutil reads it): 06:00 UTC for UTC-6, 12:00 for UTC-12,
    18:00 for UTC+6; counts after 6, 12 and 18 h of an hourly poll are (1, 0, 0), (1, 1, 0),
    (1, 1, 1)."""
    pyncette = make_pyncette(poll_interval=3600)
    zones = {"minus6": "UTC-6", "minus12": "UTC-12", "plus6": "UTC+6"}
    for name, zone in zones.items():

        @pyncette.task(schedule="0 0 * * *", timezone=zone, name=name)
        def midnight(context: Context) -> None: ...

    counts = []
    with simulate(pyncette, start=T0) as sim:
        for _ in range(3):
            sim.advance(timedelta(hours=6))
            counts.append(tuple(len(sim.executions(name)) for name in zones))
        firsts = {name: sim.executions(name)[0].scheduled_at for name in zones}

    assert counts == [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
    assert firsts == {"minus6": at(6 * 3600), "minus12": at(12 * 3600), "plus6": at(18 * 3600)}
