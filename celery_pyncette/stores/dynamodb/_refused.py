"""The item a refused DynamoDB conditional write met, on every endpoint.

The DynamoDB store decides what a failed condition means from the item as it stood: a claim whose
item holds the caller's own lease token was the caller's write, retried by botocore after its reply
was lost; a release whose item carries the caller's release marker happened. DynamoDB returns that
item with the ``ConditionalCheckFailedException`` when the write asks for it
(``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and the item exists.

Endpoints that do not implement that parameter return no item (dynalite, the emulator the tests
run, is one). For them, :func:`refused_item` reads the item with a strongly consistent ``GetItem``
after the refusal. That read reflects every write acknowledged before it, so it sees the item at
least as it stood when the condition failed: a lease token or release marker that only this
caller knows is still there unless a later write (after its lease expired, a forced upsert, a
delete) replaced it -- and then the caller no longer holds the instance, which is what a refusal
reports. The read is made after every such refusal, not only after botocore's retries: a lease
extension, too, tells from the item whether it still holds the lease (its other clause failed).
On DynamoDB the read happens only when the item is missing, and it finds none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: The store's ``_call(operation, **params) -> response`` on its table.
Call = Callable[..., Mapping[str, Any]]


def refused_item(
    response: Mapping[str, Any], params: Mapping[str, Any], call: Call
) -> Mapping[str, Any] | None:
    """The item a refused write with ``params`` met: the one in the error ``response`` when the
    endpoint returned it; else, for a write that asked for it (``ALL_OLD``), the item as a
    strongly consistent ``GetItem`` through ``call`` reads it now (``None`` when there is none);
    else ``None``."""
    item: Mapping[str, Any] | None = response.get("Item")
    if item is None and params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
        item = call("get_item", Key=params["Key"], ConsistentRead=True).get("Item")
    return item
