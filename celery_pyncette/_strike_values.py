"""Strike values typed as text (the CLI's ``--where`` and the dashboard's form), and shown typed.

The rule, the same from every door:

* A strike compares its value with the occurrence's argument as JSON values of one kind: integers
  and floats compare as numbers (``1 == 1.0``), a boolean is not a number (``true`` is not ``1``),
  and a string is not a number, with one exception for identifiers: for ``==`` and ``!=`` an
  integer equals the string of its decimal digits (``12345`` and ``"12345"`` are the same
  customer; ``"012345"``, ``"12345.0"`` and ``12345.0`` are not). See :func:`equal`.
* The Python API and the dashboard's JSON API take the value as given (``"12345"`` or ``12345``).
* Text (``--where customer_id == 12345`` and the dashboard form) is a **string** unless it carries
  a type prefix: ``int:12345``, ``float:2.5``, ``bool:true``, ``json:<any JSON>`` (``json:null``,
  ``json:[1, 2]``), or ``str:<text>`` for a string that itself starts with a prefix
  (``str:int:5`` is the string ``"int:5"``).

:func:`literal` writes a value back in that text form (``parse_literal(literal(v)) == v``), and
:func:`type_name` names its type for the ``strikes`` listing and the dashboard.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Prefixes that give a text value its type.
PREFIXES = ("str:", "int:", "float:", "bool:", "json:")


def parse_literal(text: str) -> Any:
    """The strike value written as ``text``; ``ValueError`` naming a malformed typed literal."""
    prefix, _, rest = text.partition(":")
    kind = prefix + ":"
    if kind not in PREFIXES or not _:
        return text
    if kind == "str:":
        return rest
    if kind == "int:":
        try:
            return int(rest.strip())
        except ValueError:
            raise ValueError(f"{text!r}: expected an integer after int:") from None
    if kind == "float:":
        try:
            number = float(rest.strip())
        except ValueError:
            raise ValueError(f"{text!r}: expected a number after float:") from None
        if not math.isfinite(number):
            raise ValueError(f"{text!r}: a strike value must be a finite number")
        return number
    if kind == "bool:":
        lowered = rest.strip().lower()
        if lowered not in {"true", "false"}:
            raise ValueError(f"{text!r}: expected bool:true or bool:false")
        return lowered == "true"
    try:
        return json.loads(rest)
    except ValueError as exc:
        raise ValueError(f"{text!r}: the text after json: is not JSON ({exc})") from None


def literal(value: Any) -> str:
    """``value`` written so that :func:`parse_literal` reads it back unchanged."""
    if isinstance(value, str):
        return "str:" + value if value.startswith(PREFIXES) else value
    if isinstance(value, bool):
        return "bool:" + ("true" if value else "false")
    if isinstance(value, int):
        return f"int:{value}"
    if isinstance(value, float):
        return f"float:{value!r}"
    return "json:" + json.dumps(value, sort_keys=True)


def type_name(value: Any) -> str:
    """The JSON-ish type of a strike value: string, integer, float, boolean, null, list, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def shown(value: Any) -> str:
    """The value as JSON with its type, as listings show it: ``"12345" (string)``."""
    return f"{json.dumps(value, sort_keys=True)} ({type_name(value)})"


def equal(argument: Any, value: Any) -> bool:
    """Whether a strike ``==`` holds between ``argument`` and ``value`` (see the module rule)."""
    if same_kind(argument, value):
        return bool(argument == value)
    for number, text in ((argument, value), (value, argument)):
        if type_name(number) == "integer" and isinstance(text, str):
            return text == str(number)
    return False


def same_kind(argument: Any, value: Any) -> bool:
    """True when a strike value and an argument are of one JSON kind (numbers are one kind)."""
    return _kind(argument) == _kind(value)


def _kind(value: Any) -> str:
    name = type_name(value)
    return "number" if name in {"integer", "float"} else name


def looks_typed(text: str, operator: str | None) -> str | None:
    """For untyped text that reads as another JSON type, the literal of that type when the string
    would compare differently: always for an ordering (``100`` as text sorts as text), and for
    ``==``/``!=`` unless it is an integer (which matches its digits anyway). The CLI prints it as a
    hint; None when there is nothing to say."""
    if text.startswith(PREFIXES):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, str):
        return None
    if operator in ("==", "!=") and type_name(parsed) == "integer":
        return None
    return literal(parsed)
