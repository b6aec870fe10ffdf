"""``celery -A proj pyncette ...``: inspect and control schedules from a terminal.

Registered through the ``celery.commands`` entry point, so Celery's own options (``-A``, ``-b``,
``--config``) and the app's preload options apply. Every command prints an aligned table, or JSON
with ``--json``. Errors are one line on stderr and exit status 1; ``status`` exits 1 when the
scheduler is unhealthy, so it doubles as a health check.

Values given on the command line (``--arg key=VALUE``, ``--where PARAM OP VALUE``) are read as JSON
when they parse (``42``, ``true``, ``"42"``, ``[1, 2]``) and as plain strings otherwise (``bill``).
"""

from __future__ import annotations

# Importing the command modules adds their commands to the group.
from celery_pyncette.cli import (  # noqa: F401
    _extra_runs,
    _history,
    _instances,
    _operations,
    _quarantined,
    _strikes,
)
from celery_pyncette.cli._common import pyncette

__all__ = ["pyncette"]
