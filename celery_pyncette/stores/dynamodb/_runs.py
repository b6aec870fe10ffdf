"""The run history and the count of settled runs on DynamoDB, written by the commit's UpdateItem.

The count is the number attribute ``runs`` (``ADD``). The history is kept in ``history_size``
slot attributes ``h0`` (newest) to ``h{size-1}``, each the JSON text of one run: the commit sets
``h0`` to the new entry and each ``h{i}`` to the old ``h{i-1}`` (DynamoDB evaluates every operand
of an update expression against the item as it was), so the oldest falls off the end without a
read. A slot not yet filled holds NULL.
"""

from __future__ import annotations

from typing import Any

from celery_pyncette.stores._history import Run, decoded_runs, run_to_json
from celery_pyncette.stores.base import InstanceKey, RunLog
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._items import RefusedError, holds

#: The value of a slot not filled yet.
_NULL = {"NULL": True}


def history_update(run: Run | None, size: int) -> tuple[str, dict[str, Any]]:
    """The ``SET`` clauses (without ``SET``) and values that add ``run`` to a history of
    ``size`` slots and count the run: an ``ADD`` clause is returned separately by
    :func:`count_update`. Empty clauses when nothing is written."""
    if run is None or size <= 0:
        return "", {}
    clauses = ["#h0 = :entry"]
    clauses += [f"#h{i} = if_not_exists(#h{i - 1}, :nil)" for i in range(1, size)]
    return ", ".join(clauses), {":entry": {"S": run_to_json(run)}, ":nil": _NULL}


def record_run(store: Table, key: InstanceKey, run: Run, size: int) -> bool:
    """``Store.record_run`` on ``store``: one UpdateItem shifting the slots as a commit does,
    conditioned on the item existing. It is also conditioned on ``h0`` not being this very entry
    (a finish time in microseconds and a worker name make it unique): a write botocore sends
    again after a lost reply is then refused, and counts as done, instead of adding it twice."""
    slots, values = history_update(run, size)
    try:
        store._update(
            key,
            f"SET {slots}",
            "attribute_exists(#pk) AND (attribute_not_exists(#h0) OR #h0 <> :entry)",
            values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except RefusedError as refused:
        return holds(refused.item, "h0", values[":entry"]["S"])
    return True


def count_update() -> tuple[str, dict[str, Any]]:
    """The ``ADD`` clause (without ``ADD``) that counts one settled run."""
    return "#runs :one", {":one": {"N": "1"}}


def run_log(item: dict[str, Any] | None, limit: int) -> RunLog:
    """The count and history of a stored item (all its attributes)."""
    if not item:
        return RunLog()
    count = int(item["runs"]["N"]) if "runs" in item else 0
    slots = sorted(
        (int(name[1:]), value["S"])
        for name, value in item.items()
        if name[:1] == "h" and name[1:].isdigit() and "S" in value
    )
    return RunLog(count, decoded_runs((text for _, text in slots), limit))


def settled_count(item: dict[str, Any] | None) -> int:
    """The count of settled runs in an item returned by a refused write."""
    return int(item["runs"]["N"]) if item and "runs" in item else 0
