"""Run the README's "Use it" block as a user would: it is ``proj.py``, a real worker with beat.

The block is taken from README.md as written; only the broker is redirected, through Celery's own
``CELERY_BROKER_URL`` environment variable (it takes precedence over the ``broker=`` argument), to a
Redis database no other test uses, so the test neither reads nor leaves messages elsewhere.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The Redis database the README runs use (see the module docstring).
BROKER = "redis://127.0.0.1:6379/13"


def use_it_snippet() -> str:
    """The first ``python`` block after the README's "## Use it" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Use it\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md has no python block under '## Use it'"
    return match.group(1)


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


def project_env(python_path: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYNCETTE_"))}
    env["CELERY_BROKER_URL"] = BROKER
    env["PYTHONPATH"] = python_path or ""
    return env


@contextmanager
def worker_with_beat(
    python: str, folder: Path, env: dict[str, str], pool: tuple[str, ...]
) -> Iterator[Path]:
    """``celery -A proj worker -B -S pyncette`` in ``folder``; yields its log file."""
    log_path = folder / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "proj",
                "worker",
                "-B",
                "--scheduler",
                "pyncette",
                *pool,
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for_line(log_path: Path, text: str, timeout: float) -> str:
    """Poll the log until it holds ``text``; fail with the log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout} s:\n{log_path.read_text()[-4000:]}")


def run_in_project(python: str, folder: Path, env: dict[str, str], code: str) -> str:
    """Run ``code`` in a fresh interpreter that imports the project as a view would."""
    done = subprocess.run(
        [python, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def exercise_quick_start(
    python: str, folder: Path, python_path: str | None, pool: tuple[str, ...] = ("-c", "1")
) -> None:
    """Write ``proj.py`` from the README into ``folder`` and check what it promises, for real."""
    (folder / "proj.py").write_text(use_it_snippet())
    env = project_env(python_path)
    flush_broker()
    try:
        with worker_with_beat(python, folder, env, pool) as log_path:
            wait_for_line(log_path, "scheduled proj.poll_inbox", 30)
            run_in_project(python, folder, env, "import proj; proj.on_signup(7, 'Europe/Dublin')")
            wait_for_line(log_path, "reminded user 7", 30)
            wait_for_line(log_path, "polled the inbox at", 30)
            state = run_in_project(
                python,
                folder,
                env,
                "import proj; proj.on_account_deleted(7); "
                "print(proj.pyncette.get_task_state(proj.remind, 'user-7'))",
            )
            assert state.strip() == "None"
            log = log_path.read_text(errors="replace")
            assert "Traceback" not in log, log[-4000:]
    finally:
        flush_broker()
