"""Which item a refused DynamoDB write met: DynamoDB's own answer first, a consistent read else."""

from __future__ import annotations

from typing import Any

from celery_pyncette.stores.dynamodb._refused import refused_item

KEY = {"partition_id": {"S": "p"}, "task_id": {"S": "i"}}
ITEM = {**KEY, "lease": {"S": "mine"}}


class Reads:
    """Stands in for the store's ``_call``: records each call and answers with ``item``."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, operation: str, **params: Any) -> dict[str, Any]:
        self.calls.append((operation, params))
        return {} if self.item is None else {"Item": self.item}


def test_the_item_dynamodb_returned_with_the_refusal_is_used_without_another_read() -> None:
    reads = Reads({"other": {"S": "x"}})
    params = {"Key": KEY, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    assert refused_item({"Item": ITEM}, params, reads) == ITEM
    assert reads.calls == []


def test_an_endpoint_that_returned_no_item_is_asked_with_a_consistent_read() -> None:
    reads = Reads(ITEM)
    params = {"Key": KEY, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    assert refused_item({}, params, reads) == ITEM
    assert reads.calls == [("get_item", {"Key": KEY, "ConsistentRead": True})]


def test_a_missing_item_is_none_after_the_read() -> None:
    params = {"Key": KEY, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    assert refused_item({}, params, Reads(None)) is None


def test_a_write_that_did_not_ask_for_the_old_item_reads_nothing() -> None:
    reads = Reads(ITEM)

    assert refused_item({}, {"Key": KEY}, reads) is None
    assert reads.calls == []
