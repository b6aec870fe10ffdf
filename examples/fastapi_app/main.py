"""A FastAPI app using celery-pyncette's async API, with the dashboard mounted at ``/pyncette``.

::

    uvicorn examples.fastapi_app.main:app
    celery -A examples.fastapi_app.main:celery_app worker
    celery -A examples.fastapi_app.main:celery_app beat -S pyncette

The dashboard is writable for requests with ``Authorization: Bearer $PYNCETTE_DASHBOARD_TOKEN``
(or a browser signed in with that token at ``/pyncette/login``).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from celery import Celery
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from celery_pyncette import Context, Pyncette, TaskLockedError
from celery_pyncette.dashboard import create_app as create_dashboard

celery_app = Celery(
    "fastapi_app", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
)
celery_app.conf.pyncette_url = os.environ.get("PYNCETTE_URL", "sqlite:///fastapi-schedules.sqlite3")
pyncette = Pyncette(celery_app)


@pyncette.dynamic_task(name="fastapi_app.follow_up")
async def follow_up(context: Context) -> str:
    """Remind a customer about an open order; ``async def`` tasks work too."""
    return f"following up on order {context.args['order_id']}"


class FollowUp(BaseModel):
    """When to follow up: a cron expression (with a zone) or one moment."""

    schedule: str | None = None
    timezone: str | None = None
    at: datetime | None = None


class Scheduled(BaseModel):
    instance: str
    next_run: datetime
    schedule: str | None
    last_status: str | None


app = FastAPI(title="orders")
app.mount(
    "/pyncette",
    create_dashboard(pyncette, writable=True, token=os.environ.get("PYNCETTE_DASHBOARD_TOKEN")),
)


def _scheduled(state: Any) -> Scheduled:
    return Scheduled(
        instance=state.instance,
        next_run=state.scheduled_at,
        schedule=state.schedule,
        last_status=state.last_status,
    )


@app.put("/orders/{order_id}/follow-up", status_code=201)
async def schedule_follow_up(order_id: int, body: FollowUp) -> Scheduled:
    try:
        state = await pyncette.aschedule_task(
            follow_up,
            f"order-{order_id}",
            schedule=body.schedule,
            timezone=body.timezone,
            execute_at=body.at,
            order_id=order_id,
        )
    except TaskLockedError:
        raise HTTPException(409, "the follow-up is running right now") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _scheduled(state)


@app.get("/orders/{order_id}/follow-up")
async def get_follow_up(order_id: int) -> Scheduled:
    state = await pyncette.aget_task_state(follow_up, f"order-{order_id}")
    if state is None:
        raise HTTPException(404, "no follow-up scheduled")
    return _scheduled(state)


@app.delete("/orders/{order_id}/follow-up", status_code=204)
async def cancel_follow_up(order_id: int) -> None:
    if not await pyncette.aunschedule_task(follow_up, f"order-{order_id}"):
        raise HTTPException(404, "no follow-up scheduled")


@app.get("/follow-ups")
async def list_follow_ups(limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
    page = await pyncette.alist_task_states(follow_up, limit, cursor)
    return {
        "follow_ups": [_scheduled(s).model_dump(mode="json") for s in page.tasks],
        "next_cursor": page.continuation_token,
    }
