"""The worker side: the task base class, the middleware chain, fixtures, and outcomes.

Beat sends each occurrence with a ``pyncette`` header (see :mod:`celery_pyncette._occurrence`).
Before the function runs, an at-least-once execution takes its lease: one atomic write replaces
the message's token with a fresh one, expiring a full ``lease_duration`` from the execution's
start. That proves the lease is still ours, and a message whose lease was taken over
(re-sent after the lease expired, or delivered a second time while the first delivery runs)
does not run the function again. After the run, the outcome is applied per execution and
failure mode:

=================  ==========================  =========================================
mode               success                     exception
=================  ==========================  =========================================
AT_LEAST_ONCE      commit (next run, unlock)   NONE: keep lease; UNLOCK: unlock; COMMIT: commit
AT_MOST_ONCE       nothing (beat committed)    nothing (logged by Celery)
=================  ==========================  =========================================

The history entry of a failure under NONE, and a ``lease_lost`` entry when a commit or unlock
finds its lease taken over, are written alone by ``Store.record_run`` (one more round trip, only
then, none with a history size of 0); they change no lease, next run or count of runs.

A message received after its expiry is discarded by Celery and its occurrence committed as
``"expired"`` (:mod:`celery_pyncette.worker._expiry`).

Celery's own ``retry()`` keeps the lease: the request's header is updated in place with the
execution's token, so the retried message carries it; ``Ignore`` and ``Reject`` keep it too.
Tasks declared with the decorators get :class:`PyncetteTaskMixin`, bound to their app's runtime;
plain Celery tasks scheduled through ``beat_schedule`` are handled through signals
(:mod:`celery_pyncette.worker._receivers`), which can commit but cannot skip a run (Celery swallows
exceptions raised by signal receivers).
"""

from __future__ import annotations

from celery_pyncette.worker._execution import Execution
from celery_pyncette.worker._middleware import run_chain
from celery_pyncette.worker._receivers import connect as connect_receivers
from celery_pyncette.worker._task import PyncetteTaskMixin

__all__ = ["Execution", "PyncetteTaskMixin", "connect_receivers", "run_chain"]
