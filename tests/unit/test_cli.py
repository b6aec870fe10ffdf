"""``celery pyncette``: through click's runner, and once through the real ``celery`` executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette
from celery_pyncette.cli import pyncette as pyncette_group

ROOT = Path(__file__).resolve().parents[2]


def invoke(app: Celery, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.output


def test_list_shows_tasks_with_instance_counts(app: Celery, pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 * * * *", name="hourly")
    def hourly(context: Context) -> None: ...

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    pyncette.schedule_task(hello, "a", schedule="* * * * *")
    pyncette.schedule_task(hello, "b", schedule="* * * * *")

    code, output = invoke(app, "list", "--json")

    assert code == 0
    rows = {row["task"]: row for row in json.loads(output)}
    assert rows["hello"]["instances"] == 2
    assert rows["hello"]["kind"] == "dynamic"
    assert rows["hourly"]["kind"] == "static"

    code, table = invoke(app, "list")
    assert code == 0
    assert table.splitlines()[0].split() == ["TASK", "KIND", "SCHEDULE", "INSTANCES", "NEXT_RUN", "ENABLED"]


def test_show_lists_a_dynamic_tasks_instances(app: Celery, pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    pyncette.schedule_task(hello, "bill", schedule="* * * * *", username="bill")

    code, output = invoke(app, "show", "hello", "--json")

    assert code == 0
    (row,) = json.loads(output)
    assert row["instance"] == "bill"
    assert json.loads(row["args"]) == {"username": "bill"}


def test_errors_are_one_line_and_a_non_zero_exit(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "show", "no-such-task")

    assert code != 0
    assert output.strip().count("\n") == 0
    assert "no-such-task" in output


def test_the_group_is_registered_with_the_celery_executable(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "E2E_STORE": f"sqlite:///{tmp_path}/s.sqlite3"}

    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tests.e2e.proj", "pyncette", "list", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "e2e.every_second" in {row["task"] for row in json.loads(result.stdout)}
