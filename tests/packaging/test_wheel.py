"""The package as a user gets it.

``python -m build`` makes a wheel and an sdist; the wheel, installed with ``[redis]`` into a fresh
virtualenv (nothing of this checkout on its path), runs the README's quick start against a real
worker with embedded beat (tests/packaging/readme.py).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging.readme import ROOT, exercise_quick_start
from tests.support.servers import require_server

#: The README runs share one Redis database and the default queue (tests/packaging/readme.py):
#: one xdist worker runs them one after the other, or each would consume the other's messages.
pytestmark = [pytest.mark.e2e, pytest.mark.server, pytest.mark.xdist_group("readme-broker")]


def _run(*command: str | Path, cwd: Path) -> None:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.timeout(600)
def test_the_built_wheel_runs_the_quick_start_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    require_server("redis", "127.0.0.1", 6379)
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("celery_pyncette-*.whl")
    (sdist,) = dist.glob("celery_pyncette-*.tar.gz")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "celery_pyncette/py.typed" in names
    assert any(name.endswith(".lua") for name in names), "the Redis store's scripts are missing"
    assert not any(name.startswith("tests/") for name in names)
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("/pyproject.toml") for name in archive.getnames())

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", f"{wheel}[redis]", cwd=tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    exercise_quick_start(str(python), project, python_path=None)
