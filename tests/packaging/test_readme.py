"""The README's "Use it" block runs as written (tests/packaging/readme.py), so it cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.packaging.readme import ROOT, exercise_quick_start
from tests.servers import require_server

pytestmark = [pytest.mark.e2e, pytest.mark.server]


def test_the_readme_snippet_runs_as_written(tmp_path: Path) -> None:
    require_server("redis", "127.0.0.1", 6379)
    exercise_quick_start(sys.executable, tmp_path, str(ROOT))
