"""The task base class of pyncette tasks (a mixin that composes with any Celery ``Task``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery_pyncette import _tracing as tracing
from celery_pyncette._context import reset_current, set_current
from celery_pyncette._occurrence import occurrence_of, update_header
from celery_pyncette.worker._execution import CONTROL_FLOW, Execution
from celery_pyncette.worker._middleware import run_chain

if TYPE_CHECKING:
    from celery_pyncette._runtime import Runtime


class PyncetteTaskMixin:
    """Task base class behaviour for pyncette tasks; composes with any Celery ``Task`` class.

    ``__call__`` builds the :class:`Context` from the message (``pyncette`` header and keyword
    arguments), runs the function inside the middlewares and records the outcome in the store.
    """

    typing = False
    #: The runtime of the app that declared the task, bound when its class is made.
    pyncette_runtime: Runtime
    name: str
    request: Any
    app: Any
    run: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        runtime = self.pyncette_runtime
        occurrence = occurrence_of(self.request)
        definition = runtime.definition(occurrence.task if occurrence else self.name)
        call_args = {**definition.args, **kwargs}
        execution = Execution(runtime, definition, occurrence, call_args)
        if occurrence is None:  # a direct call, not an occurrence: no span
            return self._execute(execution, runtime)
        with tracing.execution(
            self.request,
            definition.name,
            occurrence.instance,
            occurrence.partition,
            occurrence.scheduled_at,
        ) as span:
            try:
                return self._execute(execution, runtime)
            except BaseException as exc:
                if not isinstance(exc, CONTROL_FLOW):
                    span.failed(exc)
                raise
            finally:
                span.finish(execution.outcome)

    def _execute(self, execution: Execution, runtime: Runtime) -> Any:
        try:
            if not execution.claim() or execution.struck():
                return None
            update_header(self.request, execution.occurrence)
            token = set_current(execution.context)
            try:
                execution.context.use_fixtures(runtime.fixture_values())
                # The base class's __call__ (Flask's app context, Django's) wraps the function.
                call_base = super().__call__  # type: ignore[misc]
                result = run_chain(runtime.catalog.middlewares, execution.context, call_base)
            except BaseException as exc:
                execution.failed(exc)
                raise
            finally:
                reset_current(token)
            execution.succeeded()
            return result
        finally:
            execution.release_slot()
