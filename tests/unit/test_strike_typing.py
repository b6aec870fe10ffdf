"""Strikes mean the same from every door: API, CLI and dashboard agree on the value's type."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette
from celery_pyncette._strike_values import literal, parse_literal, shown
from celery_pyncette._strikes import matches
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.dashboard._formats import strike_from_form
from celery_pyncette.stores.base import Strike
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import tick


def invoke(app: Celery, *args: str) -> Any:
    return CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def sent_instances(pyncette: Pyncette) -> list[str]:
    return sorted(m[2]["pyncette"]["instance"] for m in tick(pyncette))


def schedule_customers(pyncette: Pyncette, hello: object) -> None:
    every = timedelta(seconds=1)
    pyncette.schedule_task(hello, "string", interval=every, customer_id="12345")
    pyncette.schedule_task(hello, "integer", interval=every, customer_id=12345)
    pyncette.schedule_task(hello, "padded", interval=every, customer_id="012345")
    pyncette.schedule_task(hello, "float", interval=every, customer_id=12345.0)
    pyncette.schedule_task(hello, "other", interval=every, customer_id="99")


def test_the_cli_strike_of_12345_skips_the_string_customer_id_as_api_md_writes_it(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    schedule_customers(pyncette, hello)

    result = invoke(app, "strike", "--all-tasks", "--where", "customer_id", "==", "12345")
    fake_clock.advance(seconds=1)

    assert result.exit_code == 0, result.output
    assert pyncette.strikes() == [Strike(None, "customer_id", "==", "12345")]
    assert "note" not in result.stderr  # an integer's digits match the integer too
    # "12345" and 12345 are the same customer; "012345" and 12345.0 are other values
    assert sent_instances(pyncette) == ["float", "other", "padded"]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ('json:"12345"', ["float", "other", "padded"]),
        ("int:12345", ["other", "padded"]),  # an integer is also the number 12345.0
    ],
)
def test_typed_ways_of_writing_the_customer(
    app: Celery,
    pyncette: Pyncette,
    hello: object,
    fake_clock: FakeClock,
    value: str,
    sent: list[str],
) -> None:
    schedule_customers(pyncette, hello)

    result = invoke(app, "strike", "--all-tasks", "--where", "customer_id", "==", value)
    fake_clock.advance(seconds=1)

    assert result.exit_code == 0, result.output
    assert sent_instances(pyncette) == sent


def test_the_api_strike_of_the_string_strikes_the_same_instances(
    pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    schedule_customers(pyncette, hello)

    pyncette.strike(None, "customer_id", "==", "12345")
    fake_clock.advance(seconds=1)

    assert sent_instances(pyncette) == ["float", "other", "padded"]


def test_a_plain_number_for_an_ordering_prints_how_to_compare_numbers(
    app: Celery, pyncette: Pyncette
) -> None:
    result = invoke(app, "strike", "--all-tasks", "--where", "n", ">", "100")

    assert result.exit_code == 0
    assert pyncette.strikes() == [Strike(None, "n", ">", "100")]
    assert "write int:100 to compare with the non-string value" in result.stderr


def test_the_api_and_the_cli_store_the_same_strike(app: Celery, pyncette: Pyncette) -> None:
    pyncette.strike(None, "customer_id", "==", "12345")  # API.md's example

    result = invoke(app, "restore", "--all-tasks", "--where", "customer_id", "==", "12345")

    assert result.exit_code == 0, result.output
    assert pyncette.strikes() == []


def test_strikes_shows_each_value_with_its_type(app: Celery, pyncette: Pyncette) -> None:
    pyncette.strike(None, "customer_id", "==", "12345")
    pyncette.strike(None, "customer_id", "==", 12345)

    table = invoke(app, "strikes").output.splitlines()
    rows = json.loads(invoke(app, "strikes", "--json").output)

    assert table[0].split() == ["TASK", "PARAMETER", "OPERATOR", "VALUE", "TYPE", "REASON"]
    assert sorted(line.split()[3:] for line in table[1:]) == [
        ['"12345"', "string", "-"],
        ["12345", "integer", "-"],
    ]
    assert sorted((r["value"], r["type"]) for r in rows if r["type"] == "string") == [
        ("12345", "string")
    ]
    assert sorted(r["type"] for r in rows) == ["integer", "string"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12345", "12345"),
        ("bill", "bill"),
        ("int:12345", 12345),
        ("float:2.5", 2.5),
        ("bool:true", True),
        ("bool:False", False),
        ("json:null", None),
        ("json:[1, 2]", [1, 2]),
        ('json:"12345"', "12345"),
        ("str:int:5", "int:5"),
        ("", ""),
    ],
)
def test_text_values_are_strings_unless_typed(text: str, value: Any) -> None:
    assert parse_literal(text) == value
    assert type(parse_literal(text)) is type(value)
    assert parse_literal(literal(value)) == value


@pytest.mark.parametrize("text", ["int:12a", "float:x", "float:nan", "bool:yes", "json:{"])
def test_a_malformed_typed_value_is_refused_naming_it(
    app: Celery, pyncette: Pyncette, text: str
) -> None:
    with pytest.raises(ValueError, match=r"expected|not JSON|finite"):
        parse_literal(text)
    result = invoke(app, "strike", "--all-tasks", "--where", "n", "==", text)
    assert result.exit_code == 2
    assert pyncette.strikes() == []


def test_the_dashboard_form_reads_values_as_the_cli_does() -> None:
    form = {"task": "", "parameter": "customer_id", "operator": "==", "value": "12345"}
    assert strike_from_form(form) == (None, "customer_id", "==", "12345")
    assert strike_from_form({**form, "value": "int:12345"})[3] == 12345
    assert shown("12345") == '"12345" (string)'
    assert shown(12345) == "12345 (integer)"


@pytest.mark.parametrize(
    ("strike", "argument", "struck"),
    [
        (Strike(None, "c", "==", "12345"), 12345, True),
        (Strike(None, "c", "==", 12345), "12345", True),
        (Strike(None, "c", "!=", 12345), "12345", False),
        (Strike(None, "c", "!=", 12345), "012345", True),
        (Strike(None, "c", "==", "-7"), -7, True),
        (Strike(None, "c", "==", "12345"), 12345.0, False),
        (Strike(None, "c", "==", "1"), True, False),
        (Strike(None, "c", "==", 1), True, False),
        (Strike(None, "c", "==", True), 1, False),
        (Strike(None, "c", "==", 1), 1.0, True),
        (Strike(None, "c", "<", 10), 2.5, True),
        (Strike(None, "c", "<", "10"), 2, False),
    ],
)
def test_values_compare_as_json_values(strike: Strike, argument: Any, struck: bool) -> None:
    assert matches(strike, "t", {"c": argument}) is struck
