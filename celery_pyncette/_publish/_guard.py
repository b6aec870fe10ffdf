"""The version guard of the factory emulation: use it only where it was verified.

:func:`factory_for` is asked once per publisher, at its first batch (when the app's
configuration is final). On a Celery or kombu release outside the verified range, or when
Celery lacks a private attribute the emulation reads, it says why in one log line and returns
``None``: the publisher then sends every message with ``app.send_task``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import celery
import kombu
from celery import Celery

from celery_pyncette._publish._message import logger

if TYPE_CHECKING:
    from celery_pyncette._publish._factory import Factory

#: The (major, minor) releases of Celery and kombu the factory emulation was verified on; each
#: range includes its first and excludes its last bound.
VERIFIED = {"celery": ((5, 7), (5, 8)), "kombu": ((5, 7), (5, 8))}


def factory_for(app: Celery) -> Factory | None:
    """The factory emulation for ``app``, or ``None`` (logged) where it cannot be trusted."""
    reason = _version_problem()
    if reason is None:
        try:
            from celery_pyncette._publish import _factory
        except ImportError as exc:
            reason = f"Celery lacks what it imports ({exc})"
        else:
            owners = (
                # on the class: reading Celery's cached properties would build them now
                ("app.amqp", type(app.amqp), _factory.AMQP_ATTRIBUTES),
                ("app", app, _factory.APP_ATTRIBUTES),
                ("celery.Task", celery.Task, _factory.TASK_ATTRIBUTES),
            )
            missing = [
                f"{where}.{name}"
                for where, owner, names in owners
                for name in names
                if not hasattr(owner, name)
            ]
            if not missing:
                return _factory.Factory(app)
            reason = f"Celery has no {', '.join(missing)}"
    logger.warning(
        "the fast publisher is not used, every message is sent with app.send_task: %s", reason
    )
    return None


def _version_problem() -> str | None:
    for name, module in (("celery", celery), ("kombu", kombu)):
        version = tuple(module.VERSION[:2])
        low, high = VERIFIED[name]
        if not low <= version < high:
            return (
                f"{name} {module.__version__} is outside the releases it was verified on "
                f"({'.'.join(map(str, low))} to before {'.'.join(map(str, high))})"
            )
    return None
