"""``python -m benchmarks [--quick] [--only ...]``: make sure the benchmark's own virtualenv
exists, then run the harness (``benchmarks/run.py``) inside it.

The peers (RedBeat, sqlalchemy-celery-beat, Pyncette) are installed only in ``benchmarks/.venv``,
from ``benchmarks/requirements.txt``, together with this project (editable) — never as project
dependencies. This file uses the standard library only, so any Python 3.10+ can start it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".requirements-sha1"


def _wanted() -> str:
    text = (HERE / "requirements.txt").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha1(text, usedforsecurity=False).hexdigest()


def ensure_venv() -> None:
    """Create or update benchmarks/.venv when requirements.txt or pyproject.toml changed."""
    if STAMP.exists() and STAMP.read_text().strip() == _wanted() and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating {VENV} ...", file=sys.stderr, flush=True)
        venv.create(VENV, with_pip=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "-r", str(HERE / "requirements.txt"), "-e", f"{ROOT}[redis,postgres]"], check=True
    )
    STAMP.write_text(_wanted() + "\n")


def main() -> None:
    ensure_venv()
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    if os.environ.get("BENCH_COMMAND"):
        command = os.environ["BENCH_COMMAND"]
    if Path(sys.prefix).resolve() == VENV.resolve():
        from benchmarks.run import main as run

        sys.exit(run([*sys.argv[1:], "--command", command]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(PYTHON), "-m", "benchmarks.run", *sys.argv[1:], "--command", command]
    sys.exit(subprocess.run(args, cwd=ROOT, env=env).returncode)


if __name__ == "__main__":
    main()
