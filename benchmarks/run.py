"""Run every benchmark in one invocation and write ``results/latest.{json,md}``.

    python -m benchmarks            # the full run (~25 min): what README.md shows
    python -m benchmarks --quick    # smaller N, one repeat (~4 min): for development
    python -m benchmarks --only dispatch,peers

``python -m benchmarks`` first makes sure ``benchmarks/.venv`` exists (see ``__main__.py``); this
module runs inside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks import latency, ours, peers, report, worker
from benchmarks.common import (
    PAIRS,
    RESULTS,
    STORES,
    Options,
    log,
    temporary_directory,
)

SUITES = ("dispatch", "schedule", "idle", "latency", "worker", "peers")
#: Longest one celery-pyncette or limit dispatch run may take before its rate is taken as is.
DISPATCH_BUDGET = 60.0


def attempt(label: str, call: Callable[[], Any]) -> Any:
    """Run one measurement; a failure is recorded in the results and the run goes on."""
    log(label)
    try:
        return call()
    except Exception as exc:
        log(f"  FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, one repeat (~4 min)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument(
        "--no-splice", action="store_true", help="do not copy the table into README/docs"
    )
    parser.add_argument("--command", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = {s for s in args.only.split(",") if s}
    unknown = only - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; choose from {SUITES}")
    options = Options.make(args.quick, only)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # a scratch Redis without persistence is fine here
    logging.getLogger("celery_pyncette.stores.redis").setLevel(logging.ERROR)
    command = args.command or "python -m benchmarks " + " ".join(argv or sys.argv[1:])
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "command": command.strip(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.1f} at start",
            "quick": options.quick,
            "repeats": options.repeats,
        },
    }
    ours.DISPATCH_BUDGET = DISPATCH_BUDGET
    with temporary_directory() as directory:
        if options.wants("dispatch"):
            section = results.setdefault("dispatch", {})
            for store, broker in PAIRS:
                for n in options.dispatch_sizes:
                    first = n == options.dispatch_sizes[0]
                    # the peers a target compares with, back to back with ours: Pyncette on the
                    # same store (it has no broker; filling it for the larger N takes longer than
                    # measuring), RedBeat on Redis
                    rivals = (
                        peers.rivals(store, n, options.peer_budget, directory, first)
                        if broker == "redis"
                        else None
                    )
                    section[f"{store}:{broker}:{n}"] = attempt(
                        f"dispatch {store} -> {broker}, {n:,} due, x{options.repeats}",
                        lambda s=store, b=broker, n=n, p=rivals: ours.dispatch(
                            s, b, n, options.repeats, directory, p
                        ),
                    )
        if options.wants("schedule"):
            section = results.setdefault("schedule", {})
            for store in STORES:
                section[store] = attempt(
                    f"schedule_task / schedule_tasks on {store}",
                    lambda s=store: ours.schedule_rates(
                        s, options.single_budget, options.bulk_size, options.repeats, directory
                    ),
                )
        if options.wants("idle"):
            section = results.setdefault("idle", {})
            for store in STORES:
                section[store] = attempt(
                    f"idle ticks on {store}",
                    lambda s=store: ours.idle(
                        s,
                        options.idle_sizes,
                        options.idle_partitioned_sizes,
                        options.repeats,
                        directory,
                    ),
                )
        if options.wants("latency"):
            results["latency"] = attempt(
                f"latency, x{options.repeats}",
                lambda: latency.repeated(
                    PAIRS, options.latency_seconds, options.repeats, directory
                ),
            )
        if options.wants("worker"):
            results["worker"] = attempt(
                "worker cost per execution",
                lambda: worker.costs(options.drain_size, options.repeats, directory),
            )
        if options.wants("peers"):
            results["peers"] = attempt(
                "peers",
                lambda: peers.run(
                    options.dispatch_sizes,
                    options.peer_budget,
                    options.dispatch_sizes[0],
                    directory,
                ),
            )
    results["meta"]["minutes"] = round((time.monotonic() - started) / 60, 1)
    name = "quick" if options.quick or only else "latest"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = report.render(results)
    (RESULTS / f"{name}.md").write_text(markdown)
    if name == "latest" and not args.no_splice:
        report.splice(markdown, results["meta"]["command"])
    print(markdown)
    log(f"done in {results['meta']['minutes']} min; wrote {RESULTS / name}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
