"""DynamoDBStore: its URL, and a constructor that does no I/O. No server needed."""

from __future__ import annotations

import pytest

from celery_pyncette.errors import ConfigurationError, StoreError
from celery_pyncette.stores import store_from_url
from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.dynamodb import DynamoDBSettings, DynamoDBStore, parse_url
from tests.support.servers.dynalite import aws_environment

pytestmark = pytest.mark.timeout(30)

#: Nothing listens on port 1 of the loopback interface: a connection there is refused at once.
DEAD = "http://127.0.0.1:1"


def test_a_url_names_region_table_endpoint_and_skip_flag() -> None:
    url = f"dynamodb://eu-west-3/my.table_1?endpoint_url={DEAD}&skip_table_create=true"

    assert parse_url(url) == DynamoDBSettings("eu-west-3", "my.table_1", DEAD, True)


def test_a_local_region_name_is_accepted_for_dynamodb_local() -> None:
    assert parse_url("dynamodb://localhost/tbl?endpoint_url=http://localhost:8000").region == (
        "localhost"
    )


def test_a_url_without_a_region_leaves_it_to_boto3() -> None:
    assert parse_url("dynamodb:///schedules") == DynamoDBSettings(None, "schedules")


def test_skip_table_create_comes_from_the_url_or_the_keyword() -> None:
    from_url = DynamoDBStore("dynamodb://us-east-1/tbl?skip_table_create=1")
    from_keyword = DynamoDBStore("dynamodb://us-east-1/tbl", skip_table_create=True)
    neither = DynamoDBStore("dynamodb://us-east-1/tbl?skip_table_create=0")

    assert (from_url.skip_table_create, from_keyword.skip_table_create) == (True, True)
    assert neither.skip_table_create is False


def test_unknown_parameters_are_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="endpoint, skip_tables_create"):
        DynamoDBStore("dynamodb://us-east-1/tbl?skip_tables_create=1&endpoint=http://x")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("dynamodb://us-east-1", "table name"),
        ("dynamodb://us-east-1/", "table name"),
        ("dynamodb://us-east-1/a/b", "table name"),
        ("dynamodb://us-east-1/ab", "table name"),
        ("dynamodb://us-east-1/bad name", "table name"),
        ("dynamodb://us-east-1:443/tbl", "not an AWS region"),
        ("dynamodb://US_EAST/tbl", "not an AWS region"),
        ("dynamodb://key:secret@us-east-1/tbl", "not a DynamoDB URL"),
        ("dynamodb://us-east-1/tbl#x", "not a DynamoDB URL"),
        ("redis://us-east-1/tbl", "not a DynamoDB URL"),
        ("dynamodb://us-east-1/tbl?endpoint_url=ftp://host", "not an http"),
        ("dynamodb://us-east-1/tbl?endpoint_url=", "not an http"),
        ("dynamodb://us-east-1/tbl?skip_table_create=maybe", "skip_table_create"),
        ("dynamodb://us-east-1/tbl?skip_table_create=1&skip_table_create=0", "repeated"),
        ("dynamodb://us-east-1/tbl?endpoint_url", "malformed"),
    ],
)
def test_a_malformed_url_is_a_configuration_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        DynamoDBStore(url)


def test_the_scheme_maps_to_this_store_without_connecting() -> None:
    store = store_from_url(f"dynamodb://us-east-1/tbl?endpoint_url={DEAD}", namespace="app")

    assert isinstance(store, DynamoDBStore)
    assert (store.table, store.namespace) == ("tbl", "app")
    store.close()  # never connected: closing is a no-op


def test_the_first_operation_connects_and_reports_a_dead_endpoint_as_a_store_error() -> None:
    store = DynamoDBStore(f"dynamodb://us-east-1/tbl?endpoint_url={DEAD}")

    with aws_environment(), pytest.raises(StoreError, match="tbl") as caught:
        store.get(InstanceKey("t", 0, "i"))

    assert caught.value.__cause__ is not None  # the botocore error, chained


@pytest.mark.parametrize("name", ["", "é" * 513])
def test_instance_names_dynamodb_cannot_key_are_refused_before_any_request(name: str) -> None:
    store = DynamoDBStore(f"dynamodb://us-east-1/tbl?endpoint_url={DEAD}")

    with pytest.raises(ValueError, match="1 to 1024"):
        store.get(InstanceKey("t", 0, name))
