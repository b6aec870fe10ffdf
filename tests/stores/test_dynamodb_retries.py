"""DynamoDBStore under throttling, server errors and lost replies.

The emulator (dynalite) does not throttle, so these tests put an HTTP endpoint of their own between
the store and DynamoDB: it answers the first requests with scripted errors, and either answers the
rest with ``{}`` or forwards them to the emulator -- optionally dropping its reply to one write and
answering 500 instead, so the write happened but the client cannot know. boto3 is not patched: the
retries observed are botocore's, configured by the store.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from celery_pyncette.errors import LeaseLostError, StoreError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.support.servers.dynalite import (
    admin_client,
    aws_environment,
    dynamodb_endpoint,
    store_url,
)

pytestmark = pytest.mark.timeout(30)

KEY = InstanceKey("t", 0, "i")
T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def _error(error: str) -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error}"}).encode()


class Endpoint:
    """An HTTP endpoint speaking DynamoDB's JSON protocol, for one test.

    Each request first pops the next scripted ``(status, error type)`` of ``errors``. Without one
    left, it is forwarded to ``upstream`` (when given) or answered with ``{}``. The next reply to an
    operation named in ``lose`` (e.g. ``"UpdateItem"``) is dropped and replaced by a 500.
    """

    def __init__(self, errors: list[tuple[int, str]], upstream: str | None, lose: set[str]) -> None:
        self.errors, self.upstream, self.lose = list(errors), upstream, set(lose)
        self.operations: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                endpoint.operations.append(operation)
                status, payload = endpoint.answer(operation, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, operation: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.errors:
            status, error = self.errors.pop(0)
            return status, _error(error)
        if self.upstream is None:
            return 200, b"{}"
        kept = {k: v for k, v in headers.items() if k.lower() not in {"host", "connection"}}
        request = urllib.request.Request(self.upstream, body, kept, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as refused:
            status, payload = refused.code, refused.read()
        if operation in self.lose:
            self.lose.discard(operation)
            return 500, _error("InternalServerError")
        return status, payload

    def store(self, table: str = "scripted", **attributes: object) -> DynamoDBStore:
        store = DynamoDBStore(store_url(self.url, table), namespace="ns")
        for name, value in attributes.items():
            setattr(store, name, value)
        return store


EndpointFactory = Callable[..., Endpoint]


@pytest.fixture
def endpoint() -> Iterator[EndpointFactory]:
    """``endpoint(errors=[...], upstream=None, lose=set())`` starts one; all stop at teardown."""
    started: list[Endpoint] = []

    def start(
        errors: list[tuple[int, str]] = [],  # noqa: B006 - never mutated
        upstream: str | None = None,
        lose: set[str] = set(),  # noqa: B006 - never mutated
    ) -> Endpoint:
        started.append(Endpoint(errors, upstream, lose))
        return started[-1]

    with aws_environment():
        yield start
    for each in started:
        each.server.shutdown()
        each.server.server_close()


# --- retries ------------------------------------------------------------------------------------


def test_throttling_is_retried_until_the_call_succeeds(endpoint: EndpointFactory) -> None:
    server = endpoint(
        [(400, "ProvisionedThroughputExceededException"), (400, "ThrottlingException")]
    )
    store = server.store()

    assert store.get(KEY) is None
    assert server.operations == ["GetItem"] * 3
    store.close()


def test_server_errors_are_retried_then_raised_as_a_store_error(endpoint: EndpointFactory) -> None:
    server = endpoint([(500, "InternalServerError")] * 5)
    store = server.store(max_attempts=2)

    with pytest.raises(StoreError, match="InternalServerError") as caught:
        store.get(KEY)

    assert server.operations == ["GetItem"] * 2
    assert isinstance(caught.value.__cause__, ClientError)
    store.close()


def test_other_errors_are_not_retried_and_name_the_table(endpoint: EndpointFactory) -> None:
    server = endpoint([(400, "ValidationException")])
    store = server.store()

    with pytest.raises(StoreError, match=r"'scripted'.*ValidationException"):
        store.delete(KEY)

    assert server.operations == ["DeleteItem"]
    store.close()


def test_a_missing_table_is_reported_as_such(endpoint: EndpointFactory) -> None:
    server = endpoint([(400, "ResourceNotFoundException")])
    store = server.store()

    with pytest.raises(StoreError, match=r"'scripted'.*does not exist"):
        store.get(KEY)
    store.close()


# --- a write that happened, with its reply lost: botocore retries it ----------------------------


@pytest.fixture
def direct() -> Iterator[DynamoDBStore]:
    """A store on the emulator itself (a fresh table), to prepare and inspect state."""
    upstream = dynamodb_endpoint()
    table = f"pyncette-{uuid.uuid4().hex[:12]}"
    with aws_environment():
        store = DynamoDBStore(store_url(upstream, table), namespace="ns")
        store.setup()
        store.upsert(InstanceRecord(KEY, T0), T0)
        yield store
        store.close()
        admin_client(upstream).delete_table(TableName=table)


def lossy_store(endpoint: EndpointFactory, direct: DynamoDBStore) -> DynamoDBStore:
    server = endpoint(upstream=direct.settings.endpoint_url, lose={"UpdateItem"})
    return server.store(direct.table)


def test_a_claim_whose_reply_was_lost_is_still_returned(
    endpoint: EndpointFactory, direct: DynamoDBStore
) -> None:
    (got,) = lossy_store(endpoint, direct).claim_due("t", 0, T0, 10, LEASE, "b1")

    state = direct.get(KEY)
    assert state is not None
    assert state.lease == got.lease
    assert got.locked_by == "b1"


@pytest.mark.parametrize("outcome", ["commit", "unlock"])
def test_a_release_whose_reply_was_lost_is_not_reported_as_a_lost_lease(
    endpoint: EndpointFactory, direct: DynamoDBStore, outcome: str
) -> None:
    (got,) = direct.claim_due("t", 0, T0, 10, LEASE, "b1")
    lossy = lossy_store(endpoint, direct)

    if outcome == "commit":
        lossy.commit(KEY, got.lease or "", T0 + timedelta(minutes=1), T0)
    else:
        lossy.unlock(KEY, got.lease or "")

    state = direct.get(KEY)
    assert state is not None
    assert state.lease is None
    assert state.next_run == (T0 + timedelta(minutes=1) if outcome == "commit" else T0)


def test_repeating_a_finished_commit_still_reports_the_lease_lost(direct: DynamoDBStore) -> None:
    (got,) = direct.claim_due("t", 0, T0, 10, LEASE, "b1")
    direct.commit(KEY, got.lease or "", T0 + timedelta(minutes=1), T0)

    with pytest.raises(LeaseLostError):
        direct.commit(KEY, got.lease or "", T0 + timedelta(minutes=1), T0)
