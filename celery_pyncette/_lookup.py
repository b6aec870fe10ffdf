"""Finding a task definition by the name a person types.

The full name (a decorated task's Celery name, ``proj.tasks.remind``, or a ``beat_schedule``
entry's key) always works. So does the function's own name (``remind``, the last dotted part of
either name) when exactly one task has it; when several do, the error lists them, and an unknown
name's error lists every known task, so a typo is fixed at the first try.
"""

from __future__ import annotations

from collections.abc import Mapping

from celery_pyncette._definitions import TaskDefinition


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def find_definition(name: str, definitions: Mapping[str, TaskDefinition]) -> TaskDefinition:
    """The definition ``name`` designates; ``ValueError`` naming the candidates otherwise."""
    exact = definitions.get(name)
    if exact is not None:
        return exact
    matches = sorted(
        key
        for key, definition in definitions.items()
        if name in {_short(definition.name), _short(definition.celery_name)}
    )
    if len(matches) == 1:
        return definitions[matches[0]]
    if matches:
        raise ValueError(
            f"{name!r} is ambiguous: it names {', '.join(matches)}; give the full name"
        )
    known = ", ".join(sorted(definitions)) or "none"
    raise ValueError(
        f"{name!r} is not a task declared with this Pyncette instance (known tasks: {known})"
    )
