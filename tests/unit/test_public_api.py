"""The public face of the package: pinned, sorted, importable (API.md is the contract)."""

from __future__ import annotations

import celery_pyncette

EXPECTED = [
    "BulkWriteError",
    "ConfigurationError",
    "Context",
    "ExecutionMode",
    "FailureMode",
    "LeaseLostError",
    "Pyncette",
    "PyncetteError",
    "Scheduler",
    "StoreError",
    "Strike",
    "TaskDefinition",
    "TaskLockedError",
    "TaskState",
    "TaskStatePage",
    "current_context",
    "with_heartbeat",
]


def test_all_is_pinned_and_sorted() -> None:
    assert celery_pyncette.__all__ == EXPECTED
    assert sorted(celery_pyncette.__all__) == celery_pyncette.__all__


def test_every_public_name_is_importable() -> None:
    for name in EXPECTED:
        assert getattr(celery_pyncette, name) is not None, name


def test_errors_share_one_root() -> None:
    root = celery_pyncette.PyncetteError
    for name in (
        "ConfigurationError",
        "StoreError",
        "LeaseLostError",
        "TaskLockedError",
        "BulkWriteError",
    ):
        assert issubclass(getattr(celery_pyncette, name), root)


def test_the_scheduler_is_a_celery_beat_scheduler_reachable_by_its_alias() -> None:
    from importlib.metadata import entry_points

    from celery.beat import Scheduler as CeleryScheduler

    (alias,) = [e for e in entry_points(group="celery.beat_schedulers") if e.name == "pyncette"]
    assert alias.load() is celery_pyncette.Scheduler
    assert issubclass(celery_pyncette.Scheduler, CeleryScheduler)
    (command,) = [e for e in entry_points(group="celery.commands") if e.name == "pyncette"]
    assert command.load().name == "pyncette"
