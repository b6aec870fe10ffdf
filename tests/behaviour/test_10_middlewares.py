"""Pyncette 1.1's middleware behaviour (catalogue theme 10), on the simulation kit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery_pyncette import Context
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, pyncette_like


def test_middlewares_nest_in_declaration_order_and_may_swallow_a_failure() -> None:
    """Pyncette (test_middlewares): enter 1, enter 2, then success 2, success 1 for a task that
    returns; caught 2, success 1 for one that raises (the second middleware swallows it)."""
    pyncette = pyncette_like()
    calls: dict[str, list[str]] = {"returns": [], "raises": []}

    def recorder(label: str, swallow: bool) -> Any:
        def middleware(context: Context, call_next: Any) -> Any:
            log = calls[context.task.name.rsplit(".", 1)[-1]]
            log.append(f"enter {label}")
            try:
                result = call_next()
            except Exception:
                log.append(f"caught {label}")
                if not swallow:
                    raise
                return None
            log.append(f"success {label}")
            return result

        return middleware

    pyncette.middleware(recorder("1", swallow=False))
    pyncette.middleware(recorder("2", swallow=True))

    @pyncette.task(interval=timedelta(seconds=2), name="mw.returns")
    def returns(context: Context) -> None: ...

    @pyncette.task(interval=timedelta(seconds=2), name="mw.raises")
    def raises(context: Context) -> None:
        raise RuntimeError("swallowed")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=2))
        outcomes = {t: [r.outcome for r in sim.executions(t)] for t in ("mw.returns", "mw.raises")}

    assert calls == {
        "returns": ["enter 1", "enter 2", "success 2", "success 1"],
        "raises": ["enter 1", "enter 2", "caught 2", "success 1"],
    }
    assert outcomes == {"mw.returns": ["success"], "mw.raises": ["success"]}
