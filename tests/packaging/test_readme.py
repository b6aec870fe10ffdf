"""The README's "Use it" block runs as written (tests/packaging/readme.py), so it cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.packaging.readme import ROOT, exercise_quick_start
from tests.support.servers import require_server

#: The README runs share one Redis database and the default queue (tests/packaging/readme.py):
#: one xdist worker runs them one after the other, or each would consume the other's messages.
pytestmark = [pytest.mark.e2e, pytest.mark.server, pytest.mark.xdist_group("readme-broker")]


@pytest.mark.parametrize("pool", [("-c", "1"), ("-P", "solo")], ids=["prefork", "solo"])
def test_the_readme_snippet_runs_as_written(tmp_path: Path, pool: tuple[str, ...]) -> None:
    # The solo pool runs tasks in the worker's main process, from which the embedded beat is
    # forked: it hung on its SQLite store while the worker had the file open at the fork.
    require_server("redis", "127.0.0.1", 6379)
    exercise_quick_start(sys.executable, tmp_path, str(ROOT), pool)
