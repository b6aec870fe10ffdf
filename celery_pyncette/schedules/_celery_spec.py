"""A stable description of a Celery schedule object (``solar``, custom ``BaseSchedule`` classes).

The stored spec of a static task is compared with the code's at every beat start: a different
spec replaces the record (and its next run, and any live lease). A Celery schedule object has no
spec of its own, and its ``repr()`` often holds a memory address, so it is described here by what
defines it and does not change between processes:

* ``class``: the qualified name of its class (``celery.schedules.solar``);
* ``args`` and ``state``: what the object's ``__reduce__`` returns when its class defines one
  (``solar`` gives ``(event, lat, lon)``, ``crontab`` its five fields), else its attributes
  (``vars(obj)``), leaving out Celery's plumbing (``nowfun``, ``app``);

each value written as JSON (times as ISO text, durations in seconds, sets sorted, module-level
functions and classes by qualified name). Restarting beat gives the same description; changing
the class, its arguments or its attributes in code gives another one, which replaces the record.
Changing only a method's code does not: rename the class or give it a ``version`` attribute.

An object whose defining values cannot be written so (a lambda, an open connection, an object
without a stable form) is refused with ``ValueError`` naming the attribute, so a schedule that
would reset at every start is caught at start-up.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

#: Attributes that are Celery's plumbing, not the schedule's definition.
PLUMBING = frozenset({"nowfun", "app", "_app"})
_MAX_DEPTH = 8


class UndescribableScheduleError(ValueError):
    """The schedule cannot be described stably (``ValueError``)."""


def describe(obj: object) -> dict[str, Any]:
    """The stable spec of a Celery schedule object.

    Raises :class:`UndescribableScheduleError` (a ``ValueError``) when it has none.
    """
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if "<locals>" in cls.__qualname__:
        raise UndescribableScheduleError(
            f"cannot describe the Celery schedule {name} stably: its class is defined inside a "
            "function; define it at module level"
        )
    spec: dict[str, Any] = {"kind": "celery", "class": name}
    if _defines_reduce(cls):
        reduced = obj.__reduce__()
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            raise UndescribableScheduleError(
                f"cannot describe {name}: its __reduce__ returned {reduced!r}"
            )
        spec["args"] = _value(list(reduced[1]), f"{name} __reduce__ arguments", 0)
        if len(reduced) > 2 and reduced[2] is not None:
            spec["state"] = _attributes(reduced[2], f"{name} __reduce__ state")
    else:
        spec["state"] = _attributes(vars(obj) if hasattr(obj, "__dict__") else {}, name)
    return spec


def label(obj: object) -> str:
    """How listings show the schedule: its ``repr`` unless that is the default one with a memory
    address, then its class name and defining values."""
    text = repr(obj)
    if " object at 0x" not in text:
        return text
    try:
        spec = describe(obj)
    except UndescribableScheduleError:
        return f"<{type(obj).__qualname__}>"
    values = spec.get("args", spec.get("state"))
    return f"<{type(obj).__qualname__} {json.dumps(values, sort_keys=True)}>"


def _defines_reduce(cls: type) -> bool:
    for klass in cls.__mro__:
        if klass is object:
            return False
        if "__reduce__" in vars(klass):
            return True
    return False


def _attributes(state: object, where: str) -> dict[str, Any]:
    if not isinstance(state, Mapping):
        return {"value": _value(state, where, 0)}
    return {
        str(key): _value(value, f"{where}.{key}", 0)
        for key, value in sorted(state.items(), key=lambda item: str(item[0]))
        if key not in PLUMBING
    }


def _value(value: Any, where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise UndescribableScheduleError(f"cannot describe {where} stably: nested too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if not math.isfinite(number):
            raise UndescribableScheduleError(
                f"cannot describe {where} stably: {value!r} is not finite"
            )
        return number
    if isinstance(value, enum.Enum):
        return {"enum": _qualified(type(value), where), "value": _value(value.value, where, depth)}
    if isinstance(value, timedelta):
        return {"seconds": value.total_seconds()}
    if isinstance(value, (datetime, date, time)):
        return {"at": value.isoformat()}
    if isinstance(value, tzinfo):
        zone = getattr(value, "key", None) or getattr(value, "zone", None) or str(value)
        return {"zone": str(zone)}
    if isinstance(value, (list, tuple)):
        return [_value(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_value(item, f"{where} item", depth + 1) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, Mapping):
        return {
            str(k): _value(v, f"{where}.{k}", depth + 1)
            for k, v in sorted(value.items(), key=lambda item: str(item[0]))
        }
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return {"ref": _qualified(value, where)}
    raise UndescribableScheduleError(
        f"cannot describe {where} stably: it holds a {type(value).__qualname__} ({value!r:.60}); "
        "give the schedule class a __reduce__ returning plain values (numbers, text, "
        "timedeltas, datetimes)"
    )


def _qualified(target: Any, where: str) -> str:
    qualname = getattr(target, "__qualname__", "")
    module = getattr(target, "__module__", None)
    if not module or not qualname or "<" in qualname:
        raise UndescribableScheduleError(
            f"cannot describe {where} stably: {target!r:.60} is a lambda or a local function; "
            "use a module-level function"
        )
    return f"{module}.{qualname}"
