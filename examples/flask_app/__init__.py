"""A Flask app factory with Celery and celery-pyncette, scheduling per-user reminders from routes.

::

    flask --app examples.flask_app run
    celery -A examples.flask_app.make_celery worker
    celery -A examples.flask_app.make_celery beat -S pyncette

Celery settings live in ``app.config["CELERY"]`` (Flask's Celery pattern), including the
``pyncette_*`` keys. Each ``create_app()`` builds its own Celery app and :class:`Pyncette`, so tests
can build as many as they like.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from celery_pyncette import Context, Pyncette, TaskLockedError

REMIND = "flask_app.remind"

bp = Blueprint("reminders", __name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory."""
    app = Flask(__name__)
    app.config.from_mapping(
        GREETING="Hello",
        CELERY={
            "broker_url": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
            "pyncette_url": os.environ.get("PYNCETTE_URL", "sqlite:///flask-schedules.sqlite3"),
            "pyncette_poll_interval": 1.0,
        },
    )
    if config:
        app.config.from_mapping(config)
    init_celery(app)
    app.register_blueprint(bp)
    return app


def init_celery(app: Flask) -> Pyncette:
    """Create the app's Celery app and Pyncette; every task runs inside the Flask app context."""

    class FlaskTask(Task):  # type: ignore[misc]  # plain Celery tasks
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask, set_as_current=False)
    celery.config_from_object(app.config["CELERY"])
    pyncette = Pyncette(celery)

    @pyncette.middleware
    def flask_app_context(context: Context, call_next: Callable[[], Any]) -> Any:
        with app.app_context():  # pyncette tasks: their functions can use current_app
            return call_next()

    @pyncette.dynamic_task(name=REMIND)
    def remind(context: Context) -> str:
        message = f"{current_app.config['GREETING']}, user {context.args['user_id']}"
        current_app.logger.info(message)
        return message

    app.extensions["celery"] = celery
    app.extensions["pyncette"] = pyncette
    return pyncette


def pyncette() -> Pyncette:
    """The current Flask app's :class:`Pyncette`."""
    found: Pyncette = current_app.extensions["pyncette"]
    return found


@bp.post("/users/<int:user_id>/reminder")
def set_reminder(user_id: int) -> ResponseReturnValue:
    """Body: ``{"schedule": "0 9 * * *", "timezone": "Europe/Dublin"}`` or ``{"every": 3600}``."""
    body = request.get_json(silent=True) or {}
    try:
        every = body.get("every")
        state = pyncette().schedule_task(
            REMIND,
            f"user-{user_id}",
            schedule=body.get("schedule"),
            timezone=body.get("timezone"),
            interval=None if every is None else timedelta(seconds=float(every)),
            user_id=user_id,
        )
    except TaskLockedError:
        return jsonify(error="the reminder is running right now; try again"), 409
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(instance=state.instance, next_run=state.scheduled_at.isoformat()), 201


@bp.get("/users/<int:user_id>/reminder")
def get_reminder(user_id: int) -> ResponseReturnValue:
    state = pyncette().get_task_state(REMIND, f"user-{user_id}")
    if state is None:
        return jsonify(error="no reminder"), 404
    return jsonify(
        instance=state.instance,
        schedule=state.schedule,
        timezone=state.timezone,
        next_run=state.scheduled_at.isoformat(),
        last_status=state.last_status,
    )


@bp.delete("/users/<int:user_id>/reminder")
def delete_reminder(user_id: int) -> ResponseReturnValue:
    if not pyncette().unschedule_task(REMIND, f"user-{user_id}"):
        return jsonify(error="no reminder"), 404
    return "", 204
