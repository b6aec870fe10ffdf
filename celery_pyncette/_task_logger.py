"""``context.logger``: the logger a task logs through, each record naming its occurrence.

The records carry the occurrence as attributes -- ``task`` (the schedule's name), ``instance``
(``None`` for a static task), ``scheduled_at`` (aware UTC; ``None`` for a plain Celery call) and
``log_args`` (the arguments the task marks loggable with ``log_args=``: by value, or for
``"length"`` by their length) -- and the message starts with the same ``task=… instance=…
scheduled_at=…`` text as the library's own lines (:func:`celery_pyncette._logs.occurrence`), in
brackets.

The underlying logger is the one Celery's ``get_task_logger(__name__)`` gives in the module that
defines the task function: the logger a Celery user already logs to from that module, with its
level and handlers, and in a worker Celery's task log format (``task_name[task_id]``). As with
``get_task_logger``, that logger becomes a child of ``celery.task``. A task whose function is not
known (a ``beat_schedule`` entry) logs to the module part of its Celery name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence, Sized
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery.utils.log import get_task_logger

from celery_pyncette._logs import LENGTH, occurrence

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:  # LoggerAdapter is not subscriptable at run time before Python 3.11
    _Adapter = logging.LoggerAdapter

#: Used when the task's module would be one of Celery's reserved logger names.
FALLBACK_LOGGER = "celery_pyncette.task"
_RESERVED = frozenset({"celery", "celery.task"})


def logger_name(module: str | None, celery_name: str) -> str:
    """The name of a task's logger: its function's module, else its Celery name's module part."""
    name = module or celery_name.rpartition(".")[0] or celery_name
    return FALLBACK_LOGGER if name in _RESERVED else name


def loggable(args: Mapping[str, Any], logged: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The ``log_args`` attribute: each loggable argument present, by value or by length."""
    shown: dict[str, Any] = {}
    for name, how in logged:
        if name not in args:
            continue
        value = args[name]
        if how == LENGTH:
            shown[name] = len(value) if isinstance(value, Sized) else None
        else:
            shown[name] = value
    return shown


class OccurrenceLogger(_Adapter):
    """A :class:`logging.LoggerAdapter` that names one occurrence in every record.

    The caller's own ``extra=`` is kept and wins over the occurrence's attributes of the same
    name. Records point at the caller's line (``funcName``, ``lineno``), not at this adapter.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        task: str,
        instance: str | None,
        scheduled_at: datetime | None,
        args: Mapping[str, Any],
        logged: Sequence[tuple[str, str]],
    ) -> None:
        attributes = {
            "task": task,
            "instance": instance,
            "scheduled_at": scheduled_at,
            "log_args": loggable(args, logged),
        }
        super().__init__(logger, attributes)
        self.prefix = f"[{occurrence(task, instance, scheduled_at, args, logged)}] "

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return f"{self.prefix}{msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        message, kwargs = self.process(msg, kwargs)
        if args:  # the message is %-formatted with args: a "%" of the prefix must stay one
            message = self.prefix.replace("%", "%%") + message[len(self.prefix) :]
        # One frame more than a plain logger call: this method.
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.log(level, message, *args, **kwargs)


def task_logger(
    module: str | None,
    celery_name: str,
    task: str,
    instance: str | None,
    scheduled_at: datetime | None,
    args: Mapping[str, Any],
    logged: Sequence[tuple[str, str]],
) -> OccurrenceLogger:
    """The ``context.logger`` of one execution (see the module docstring)."""
    return OccurrenceLogger(
        get_task_logger(logger_name(module, celery_name)),
        task=task,
        instance=instance,
        scheduled_at=scheduled_at,
        args=args,
        logged=logged,
    )
