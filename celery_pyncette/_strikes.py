"""Strikes: disable occurrences by task and/or argument without a deploy.

A strike matches an occurrence when its task is the occurrence's (or the strike names no task) and,
for a strike with a parameter, the occurrence's argument compares true with the strike's value.
Values compare as JSON values (:mod:`celery_pyncette._strike_values`): a boolean is not a number,
a string is not a number except that an integer equals the string of its digits for ``==`` and
``!=`` (``12345`` and ``"12345"``). An argument the occurrence does not have, or an ordering
between different kinds, does not match (the latter is logged once per strike and type).

A strike may carry a ``reason`` (a note for people, shown by every listing; it plays no part in
matching). This module is the one home of strikes' rules: the operators, the validation of a new
strike (:func:`make_strike`, used by the API, the CLI and the dashboard) and the matching. Every
beat and worker keeps a :class:`StrikeView`: it re-reads the strikes only when the store's cheap
change marker moves, and looks at the marker at most once per refresh interval.
"""

from __future__ import annotations

import logging
import operator
import threading
from collections.abc import Callable, Mapping
from typing import Any, get_args

from celery_pyncette import _clock as clock
from celery_pyncette._definitions import validate_args
from celery_pyncette._strike_values import equal, same_kind
from celery_pyncette.stores._checks import check_strike_reason
from celery_pyncette.stores.base import Store, Strike, StrikeOperator

logger = logging.getLogger("celery_pyncette.strikes")

#: The operators a strike may use.
OPERATOR_NAMES: tuple[StrikeOperator, ...] = get_args(StrikeOperator)

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def make_strike(
    task: str | None,
    parameter: str | None,
    operator: str | None,
    value: Any,
    reason: str | None = None,
) -> Strike:
    """A valid strike of ``task`` (a task name, ``None`` for every task), with an optional
    ``reason`` for people (one line, at most ``STRIKE_REASON_CHARS`` characters).

    Raises ``ValueError`` naming the problem: an operator or value without a parameter, no task
    and no parameter, an empty parameter, an unknown operator, a value that is not JSON, a
    reason that is not a short line of text.
    """
    check_strike_reason(reason)
    if parameter is None:
        if operator is not None or value is not None:
            raise ValueError("a strike with an operator or value needs a parameter")
        if task is None:
            raise ValueError("a strike needs a task, a parameter, or both")
        return Strike(task, reason=reason)
    if not isinstance(parameter, str) or not parameter:
        raise ValueError(f"parameter must be a non-empty string, got {parameter!r}")
    if operator not in OPERATOR_NAMES:
        raise ValueError(f"operator must be one of {', '.join(OPERATOR_NAMES)}, got {operator!r}")
    validate_args({"value": value}, "the strike value")
    return Strike(task, parameter, operator, value, reason)


_warned: set[tuple[str, str, str]] = set()
_warned_lock = threading.Lock()


def matches(strike: Strike, task: str, args: Mapping[str, Any]) -> bool:
    """True when ``strike`` disables an occurrence of ``task`` with ``args``."""
    if strike.task is not None and strike.task != task:
        return False
    if strike.parameter is None:
        return True
    if strike.parameter not in args:
        return False
    compare = OPERATORS.get(strike.operator or "")
    if compare is None:
        return False
    argument = args[strike.parameter]
    if strike.operator in ("==", "!="):  # 12345 is "12345", true is not 1
        return equal(argument, strike.value) is (strike.operator == "==")
    if not same_kind(argument, strike.value):
        _warn_once(strike, argument)
        return False
    try:
        return bool(compare(argument, strike.value))
    except TypeError:
        _warn_once(strike, argument)
        return False


def _warn_once(strike: Strike, argument: Any) -> None:
    key = (repr(strike), type(argument).__name__, type(strike.value).__name__)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "strike %s %s %r cannot compare a %s argument with a %s value; treated as not struck",
        strike.parameter,
        strike.operator,
        strike.value,
        type(argument).__name__,
        type(strike.value).__name__,
    )


class StrikeView:
    """The strikes of one store as this process sees them, refreshed through the change marker."""

    def __init__(
        self, store: Store, refresh_interval: float, monotonic: Callable[[], float] | None = None
    ) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self._monotonic = monotonic or (lambda: clock.utcnow().timestamp())
        self._marker: str | None = None
        self._strikes: list[Strike] = []
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> list[Strike]:
        """The strikes, at most ``refresh_interval`` old. May raise ``StoreError``."""
        with self._lock:
            now = self._monotonic()
            if self._checked_at is not None and 0 <= now - self._checked_at < self.refresh_interval:
                return self._strikes
            marker = self.store.strikes_marker()
            if marker != self._marker:
                self._strikes = self.store.list_strikes()
                self._marker = marker
            self._checked_at = now
            return self._strikes

    def struck(self, task: str, args: Mapping[str, Any]) -> Strike | None:
        """The first strike that disables this occurrence, if any."""
        for strike in self.current():
            if matches(strike, task, args):
                return strike
        return None
