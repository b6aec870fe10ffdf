"""docs/testing.md, run as a user would: its files written out, pytest run on them in a fresh
process, the ``pyncette_simulation`` fixture found through the plugin's entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "testing.md"


def files_of(page: Path) -> dict[str, str]:
    """The page's Python blocks that start with a ``# name.py`` line, by name."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    named = {}
    for block in blocks:
        first, _, rest = block.partition("\n")
        if re.fullmatch(r"# \w+\.py", first):
            named[first[2:]] = rest
    return named


def test_the_plugin_is_registered_as_a_pytest_entry_point() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("celery_pyncette") == "celery_pyncette.testing._pytest_plugin"


def test_the_testing_page_runs_as_written(tmp_path: Path) -> None:
    files = files_of(PAGE)
    assert sorted(files) == ["tasks.py", "test_tasks.py"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = [str(ROOT), str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tasks.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
