"""The DynamoDB claim loop against a scripted table: what a refused write means for the batch.

A short batch promises that nothing more was claimable (``Store.claim``): a claim that lost every
race it re-read for still tries the rest of what is due, and a write of its own that botocore sent
again is returned, not lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.dynamodb import _claims
from celery_pyncette.stores.dynamodb._items import SK, RefusedError, number

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


class ScriptedTable:
    """The store as ``_claims.claim`` uses it, over a dict of items of one partition.

    An instance in ``rivals`` is taken by another claimer just before this one's write reaches it;
    one in ``retried`` is written, then refused as botocore's second attempt of that write is.
    """

    page_factor = 2

    def __init__(self, names: list[str]) -> None:
        self.items = {
            name: {SK: {"S": name}, "ready_at": number(T0), "next_run": number(T0)}
            | {"spec": {"S": "{}"}, "args": {"S": "{}"}}
            for name in names
        }
        self.rivals: set[str] = set()
        self.retried: set[str] = set()
        self.pages = 0

    def _partition_id(self, task: str, partition: int) -> str:
        return f"{task}/{partition}"

    def _due_page(
        self, pid: str, now: datetime, size: int, start: dict[str, Any] | None
    ) -> dict[str, Any]:
        self.pages += 1
        due = sorted(
            (item["ready_at"]["N"], name)
            for name, item in self.items.items()
            if float(item["ready_at"]["N"]) <= float(number(now)["N"])
        )
        if start is not None:
            due = [entry for entry in due if entry > (start["ready_at"]["N"], start[SK]["S"])]
        page: dict[str, Any] = {"Items": [{SK: {"S": name}} for _, name in due[:size]]}
        if len(due) >= size:
            ready, name = due[size - 1]
            page["LastEvaluatedKey"] = {SK: {"S": name}, "ready_at": {"N": ready}}
        return page

    def _update(
        self,
        key: InstanceKey,
        update: str,
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]:
        item = self.items[key.instance]
        if key.instance in self.rivals:
            self.rivals.discard(key.instance)
            item.update({"ready_at": values[":until"], "lease": {"S": "rival"}})
        if float(item["ready_at"]["N"]) > float(values[":now"]["N"]):
            raise RefusedError("ConditionalCheckFailedException", dict(item))
        item.update(
            {
                "ready_at": values[":until"],
                "locked_until": values[":until"],
                "lease": values[":lease"],
                "locked_by": values[":owner"],
            }
        )
        if key.instance in self.retried:
            raise RefusedError("ConditionalCheckFailedException", dict(item))
        return {"Attributes": dict(item)}

    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        raise AssertionError(f"nothing here is corrupt: {key} {reason}")


def claim(table: ScriptedTable, limit: int) -> list[str]:
    batch = _claims.claim(table, "t", 0, T0, limit, LEASE, "b1")  # type: ignore[arg-type]
    return [record.key.instance for record in batch.records]


def test_a_claim_that_lost_every_race_it_re_read_for_still_takes_what_is_left() -> None:
    names = [f"i{n:02d}" for n in range(40)]  # three index pages of 16
    table = ScriptedTable(names)
    table.rivals = set(names) - {"i39"}

    assert claim(table, 2) == ["i39"]
    assert table.rivals == set()  # every other instance was tried, and lost
    assert claim(table, 2) == []


def test_a_write_sent_again_by_botocore_is_returned_with_its_lease() -> None:
    table = ScriptedTable(["a", "b"])
    table.retried = {"a"}

    batch = _claims.claim(table, "t", 0, T0, 5, LEASE, "b1")  # type: ignore[arg-type]

    assert [r.key.instance for r in batch.records] == ["a", "b"]
    assert batch.records[0].lease == table.items["a"]["lease"]["S"]
    assert claim(table, 5) == []
