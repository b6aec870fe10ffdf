"""``make demo``: schedule a dynamic instance, then run a worker with embedded beat and watch.

Runs for ``DEMO_SECONDS`` (default 30; 0 runs until Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from examples.demo.app import greet, pyncette

    pyncette.schedule_task(greet, "bill", schedule="* * * * * */3", username="Bill")
    print("scheduled dynamic instance 'bill' (every 3 seconds) in the SQLite store", flush=True)
    pyncette.close()

    seconds = float(os.environ.get("DEMO_SECONDS", "30"))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "examples.demo.app",
            "worker",
            "-B",
            "-S",
            "pyncette",
            "-l",
            "WARNING",
            "-c",
            "2",
            "-s",
            str(ROOT / ".demo" / "beat-schedule-unused"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        if seconds > 0:
            deadline = time.monotonic() + seconds
            while worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            worker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
