"""Commands over strikes: strike, restore, strikes.

``--where PARAM OP VALUE`` reads VALUE as a string unless it has a type prefix (``int:12345``,
``float:2.5``, ``bool:true``, ``json:...``; see :mod:`celery_pyncette._strike_values`), so
``--where customer_id == 12345`` stores the string ``"12345"``, as ``strike(None, "customer_id",
"==", "12345")`` does; it strikes the arguments ``"12345"`` and ``12345`` (an integer equals the
string of its digits). Listings show each value as JSON with its type, and each strike's
reason (``strike ... --reason "incident 4711"``; ``-`` for none).
"""

from __future__ import annotations

import json
from typing import Any

import click

from celery_pyncette._read_model import sorted_strikes, strike_row
from celery_pyncette._strike_values import looks_typed, parse_literal
from celery_pyncette._strikes import OPERATOR_NAMES as STRIKE_OPERATORS
from celery_pyncette._strikes import make_strike
from celery_pyncette.cli._common import (
    F,
    emit,
    extension_of,
    fail,
    json_option,
    pyncette,
)
from celery_pyncette.errors import PyncetteError
from celery_pyncette.stores.base import Strike

COLUMNS = ["task", "parameter", "operator", "value", "type", "reason"]


def _strike_cells(strike: Strike, as_json: bool) -> dict[str, Any]:
    """A strike as the read model shows it; for a table, its value as JSON text."""
    row = strike_row(strike)
    if not as_json and strike.parameter is not None:
        row["value"] = json.dumps(strike.value)
    return row


def _strike_options(function: F) -> F:
    for decorator in reversed(
        (
            click.argument("task", required=False),
            click.option("--all-tasks", is_flag=True, help="Any task with the argument."),
            click.option(
                "--where",
                nargs=3,
                metavar="PARAM OP VALUE",
                help=f"Only where an argument compares true; OP: {' '.join(STRIKE_OPERATORS)}.",
            ),
            json_option,
            click.pass_context,
        )
    ):
        function = decorator(function)
    return function


def _strike_from(
    task: str | None, all_tasks: bool, where: tuple[str, str, str] | None
) -> tuple[str | None, str | None, str | None, Any]:
    if (task is None) == (not all_tasks):
        raise click.UsageError("give a TASK or --all-tasks (not both)")
    if all_tasks and where is None:
        raise click.UsageError("--all-tasks needs --where PARAM OP VALUE")
    if where is None:
        return task, None, None, None
    parameter, operator, text = where
    try:
        value = parse_literal(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None
    hint = looks_typed(text, operator)
    if hint is not None:
        click.echo(
            f"note: {text} is taken as the string {json.dumps(text)}; write {hint} to compare "
            "with the non-string value",
            err=True,
        )
    return task, parameter, operator, value


@pyncette.command(name="strike")
@click.option(
    "--reason",
    metavar="TEXT",
    help="Why, for whoever reads `strikes` (one line); striking again replaces it.",
)
@_strike_options
def strike(
    ctx: click.Context,
    task: str | None,
    all_tasks: bool,
    where: tuple[str, str, str] | None,
    as_json: bool,
    reason: str | None,
) -> None:
    """Disable TASK's occurrences (all, or --where an argument matches) until restored."""
    target, parameter, operator, value = _strike_from(task, all_tasks, where)
    extension = extension_of(ctx)
    try:
        struck = extension.strike(target, parameter, operator, value, reason=reason)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    emit([_strike_cells(struck, as_json)], COLUMNS, as_json)


@pyncette.command(name="restore")
@click.option("--missing-ok", is_flag=True, help="Succeed when there is no such strike.")
@_strike_options
def restore(
    ctx: click.Context,
    task: str | None,
    all_tasks: bool,
    where: tuple[str, str, str] | None,
    as_json: bool,
    missing_ok: bool,
) -> None:
    """Remove a strike given exactly as it was added."""
    target, parameter, operator, value = _strike_from(task, all_tasks, where)
    extension = extension_of(ctx)
    try:
        removed = extension.restore(target, parameter, operator, value)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    if not removed and not missing_ok:
        raise click.ClickException("no such strike (see `celery pyncette strikes`)")
    shown = make_strike(target, parameter, operator, value)
    row = {**_strike_cells(shown, as_json), "removed": removed}
    emit([row], [*COLUMNS, "removed"], as_json)


@pyncette.command(name="strikes")
@json_option
@click.pass_context
def strikes(ctx: click.Context, as_json: bool) -> None:
    """Every strike in the store (task "-" means any task)."""
    extension = extension_of(ctx)
    try:
        found = extension.strikes()
    except PyncetteError as exc:
        fail(exc)
    emit([_strike_cells(s, as_json) for s in sorted_strikes(found)], COLUMNS, as_json)
