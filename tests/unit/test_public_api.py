"""The public face of the package: pinned, sorted, importable (API.md is the contract)."""

from __future__ import annotations

from pathlib import Path

import celery_pyncette

#: The public modules: the ones the docs name; every other module starts with an underscore.
PUBLIC_MODULES = {
    "beat",
    "cli",
    "dashboard",
    "errors",
    "importers",
    "metrics",
    "schedules",
    "signals",
    "stores",
    "stores.base",
    "stores.dynamodb",
    "stores.memory",
    "stores.redis",
    "stores.sql",
    "testing",
    "worker",
}

EXPECTED = [
    "BulkWriteError",
    "ConfigurationError",
    "Context",
    "ExecutionMode",
    "FailureMode",
    "LeaseLostError",
    "Pyncette",
    "PyncetteError",
    "Run",
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


def test_only_the_documented_modules_are_public() -> None:
    package = Path(celery_pyncette.__file__).parent
    public = set()
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(part.startswith("_") for part in parts):
            public.add(".".join(parts))
    assert public == PUBLIC_MODULES
