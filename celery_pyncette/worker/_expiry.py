"""Messages that expired before a worker ran them: their occurrences are settled as ``"expired"``.

Celery discards a message received after its ``expires`` (which beat sets to the occurrence's
``scheduled_at`` plus the task's ``expires``, see :mod:`celery_pyncette._misfire`) and sends
``task_revoked`` with ``expired=True``, in the worker's main process. The receiver here commits
the occurrence under the lease its message carries, with status ``"expired"`` (the schedule moves
on to its next run, computed as for any commit), and frees its concurrency slot; otherwise the
occurrence would stay locked until the lease beat took for it runs out, and then be sent again.

An at-most-once occurrence was committed before it was sent: nothing is left to settle (its slot
is freed). A lease found lost means another delivery holds the occurrence, which settles it. A
store failure is logged; the occurrence is then sent again after its lease, and beat settles it as
expired at that claim.
"""

from __future__ import annotations

import logging
from typing import Any

from celery_pyncette import _runtime
from celery_pyncette._occurrence import occurrence_of
from celery_pyncette.worker._execution import Execution

logger = logging.getLogger("celery_pyncette.worker")


def task_expired(
    sender: Any = None, request: Any = None, expired: bool = False, **_: Any
) -> Execution | None:
    """``task_revoked`` receiver: settle the occurrence of an expired message (see the module).

    Returns the execution that settled it (``None`` for another revocation, or a message beat
    did not send); never raises into Celery.
    """
    if not expired or request is None:
        return None
    occurrence = occurrence_of(request)
    app = getattr(sender, "app", None)
    if occurrence is None or app is None:
        return None
    try:
        runtime = _runtime.runtime_for(app)
        definition = runtime.definition(occurrence.task)
    except ValueError:
        logger.warning(
            "an expired message carries a pyncette header for unknown task %r", occurrence.task
        )
        return None
    execution = Execution(
        runtime, definition, occurrence, dict(getattr(request, "kwargs", None) or {})
    )
    try:
        execution.expired()
    except Exception:  # a receiver's exception would be swallowed by Celery; say what failed
        logger.exception("could not settle the expired occurrence %s", execution.described)
    return execution
