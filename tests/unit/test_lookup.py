"""Tasks named by their function's name where that is unambiguous (celery_pyncette._lookup)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette
from celery_pyncette.cli import pyncette as pyncette_group


def test_a_function_name_designates_its_task_when_unique(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="proj.reminders.remind")
    def remind(context: Context) -> None: ...

    assert pyncette.definition("remind").name == "proj.reminders.remind"
    assert pyncette.definition("proj.reminders.remind").name == "proj.reminders.remind"
    pyncette.schedule_task("remind", "user-1", schedule="0 9 * * *")
    state = pyncette.get_task_state(remind, "user-1")
    assert state is not None
    assert state.task == "proj.reminders.remind"


def test_an_ambiguous_name_lists_the_candidates(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="billing.remind")
    def remind_billing(context: Context) -> None: ...

    @pyncette.dynamic_task(name="support.remind")
    def remind_support(context: Context) -> None: ...

    with pytest.raises(ValueError, match=r"ambiguous: it names billing\.remind, support\.remind"):
        pyncette.definition("remind")
    assert pyncette.definition("support.remind").name == "support.remind"


def test_an_unknown_name_lists_the_known_tasks(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="proj.remind")
    def remind(context: Context) -> None: ...

    @pyncette.task(schedule="0 * * * *", name="proj.hourly")
    def hourly(context: Context) -> None: ...

    with pytest.raises(ValueError, match=r"known tasks: proj\.hourly, proj\.remind"):
        pyncette.definition("remnd")


def test_the_cli_takes_the_function_name(app: Celery, pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="proj.remind")
    def remind(context: Context) -> None: ...

    pyncette.schedule_task(remind, "user-1", schedule="0 9 * * *")
    runner = CliRunner()
    shown = runner.invoke(
        pyncette_group, ["show", "remind", "user-1"], obj=SimpleNamespace(app=app)
    )
    assert shown.exit_code == 0, shown.output
    assert "user-1" in shown.output
    unknown = runner.invoke(
        pyncette_group, ["show", "remnd", "user-1"], obj=SimpleNamespace(app=app)
    )
    assert unknown.exit_code != 0
    assert "known tasks: proj.remind" in unknown.output
