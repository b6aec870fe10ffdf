"""A beat in a fresh process: idle tick times and resident memory, printed as one JSON line.

Run by the harness (``benchmarks/ours.py``) after it filled a store namespace with instances that
are not due, so the process holds nothing but what beat itself needs:

    python -m benchmarks.probe --store URL --namespace NS --broker URL --partitions 1|32
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.common import median, rss_mb
from benchmarks.ours import IDLE_TASK, IDLE_TASK_32, make_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    parser.add_argument("--partitions", type=int, choices=(1, 32), default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between rounds")
    options = parser.parse_args()

    from celery_pyncette.beat import Scheduler

    store = options.store.split(":", 1)[0]
    task = IDLE_TASK if options.partitions == 1 else IDLE_TASK_32
    d = make_app(
        store,
        options.store,
        options.broker,
        options.namespace,
        options.namespace,
        frozenset({task}),
    )
    scheduler = Scheduler(d.app)
    try:
        for _ in range(5):  # first tick syncs and records this beat; then warm caches
            scheduler.tick()
        rounds = []
        for round_number in range(options.rounds):
            if round_number:
                # spread the rounds out: a slow spell of a shared machine lasts seconds
                time.sleep(options.pause)
            times = []
            for _ in range(options.ticks):
                began = time.perf_counter()
                delay = scheduler.tick()
                times.append(time.perf_counter() - began)
                if delay <= 0:
                    raise SystemExit("something was due: the probe needs an idle store")
            rounds.append(median(times))
        print(
            json.dumps(
                {
                    # noise on a shared machine only ever adds time: the quietest round
                    "tick_ms": min(rounds) * 1000,
                    "rounds_ms": [r * 1000 for r in rounds],
                    "rss_mb": rss_mb(),
                }
            )
        )
    finally:
        scheduler.close()
        d.app.close()


if __name__ == "__main__":
    main()
