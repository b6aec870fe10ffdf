"""Turn a run's JSON into the Markdown table, and splice it into README.md and docs/benchmarks.md.

    python -m benchmarks.report              # re-render results/latest.md from results/latest.json
    python -m benchmarks.report --splice     # ... and copy it between the markers of the docs

The docs hold the table between ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->``;
nothing between the markers is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import PAIRS, RESULTS, ROOT, STORE_LABEL, STORES, median, pair_label

START = "<!-- benchmarks:start -->"
END = "<!-- benchmarks:end -->"
SPLICED = (ROOT / "README.md", ROOT / "docs" / "benchmarks.md")


def _rate(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"


def _ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x" if a / b < 10 else f"{a / b:.0f}x"


def _med(values: Any) -> float | None:
    if isinstance(values, list) and values:
        return median(values)
    return None


def _peer(results: dict[str, Any], peer: str, where: str, n: int) -> tuple[float | None, str]:
    """A peer's rate and a footnote mark (``*`` extrapolated, ``!`` failed)."""
    found = results.get("peers", {}).get("dispatch", {}).get(peer, {}).get(f"{where}/{n}")
    if not found:
        return None, ""
    if "error" in found:
        return None, "!"
    return found["rate"], "*" if found.get("extrapolated") else ""


class Targets:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bool | None]] = []

    def add(self, what: str, measured: str, ok: bool | None) -> None:
        self.rows.append((what, measured, ok))


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    targets = Targets()
    out: list[str] = [
        f"Measured {meta['date']} on {meta['machine']} with `{meta['command']}`"
        f"{' (quick mode: smaller N, one repeat)' if meta['quick'] else ''}. "
        "Medians of "
        f"{meta['repeats']} where repeated; ratios come from the same run. The machine is shared "
        "and noisy: trust ratios more than absolute numbers.",
        "",
    ]
    out += _dispatch(results, targets)
    out += _schedule(results, targets)
    out += _idle(results, targets)
    out += _latency(results, targets)
    out += _worker(results)
    out += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    for what, measured, ok in targets.rows:
        out.append(
            f"| {what} | {measured} | {'-' if ok is None else ('yes' if ok else '**no**')} |"
        )
    errors = [f"- {name}: {error}" for name, error in _errors(results)]
    if errors:
        out += ["", "Failures during this run:", "", *errors]
    return "\n".join(out) + "\n"


def _errors(results: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "error" in node and isinstance(node["error"], str):
                found.append((path, node["error"]))
                return
            for key, value in node.items():
                walk(value, f"{path}/{key}" if path else key)

    walk({k: v for k, v in results.items() if k != "meta"}, "")
    return found


def _dispatch(results: dict[str, Any], targets: Targets) -> list[str]:
    dispatch = results.get("dispatch", {})
    if not dispatch:
        return []
    out = [
        "### Dispatch: due occurrences sent per second",
        "",
        "celery-pyncette is the real beat `Scheduler.tick()` loop; the limit claims the same "
        "occurrences from the same store, a batch at a time, and publishes each batch as "
        "hand-built messages with kombu's batch producer (no scheduler logic). On a Redis store "
        "celery-pyncette claims the next batch while it publishes one, which the limit does not. "
        "Pyncette runs the task in-process instead of sending it "
        "(executions/s). RedBeat and Pyncette run back to back with celery-pyncette and the "
        "limit; *÷ limit*, *÷ Pyncette* and *÷ RedBeat* are medians of the ratios of those runs, "
        "at both N. "
        "`*` extrapolated from a time budget (see benchmarks/README.md).",
        "",
        "| store → broker | N due | celery-pyncette | limit | ÷ limit | RedBeat | ÷ RedBeat "
        "| Pyncette | ÷ Pyncette | stock beat | sqlalchemy-celery-beat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for store, broker in PAIRS:
        for key in sorted((k for k in dispatch if k.startswith(f"{store}:{broker}:")), key=_n):
            n = _n(key)
            entry = dispatch[key]
            if "error" in entry:
                out.append(f"| {pair_label(store, broker)} | {n:,} | failed | | | | | | | | |")
                continue
            ours, limit = _med(entry["ours"]), _med(entry["limit"])
            redbeat, rb_mark = (None, "")
            pyncette = _med(entry.get("pyncette"))
            py_mark = "*" if "pyncette" in entry.get("extrapolated", ()) else ""
            stock, st_mark = (None, "")
            sqla, sq_mark = (None, "")
            by_redbeat = None
            if broker == "redis":
                if store == "redis":
                    if entry.get("redbeat"):  # measured back to back with ours
                        redbeat = _med(entry["redbeat"])
                        by_redbeat = _paired(entry["ours"], entry["redbeat"])
                        rb_mark = "*" if "redbeat" in entry.get("extrapolated", ()) else ""
                    else:
                        redbeat, rb_mark = _peer(results, "redbeat", "redis", n)
                        by_redbeat = ours / redbeat if ours and redbeat else None
                    stock, st_mark = _peer(results, "stock", "shelve", n)
                if store != "redis":
                    sqla, sq_mark = _peer(results, "sqlalchemy", store, n)
            # each repeat ran ours, the limit and Pyncette back to back: the median of those
            # paired ratios is steadier on a shared machine than the ratio of two medians
            paired = _paired(entry["ours"], entry["limit"])
            by_pyncette = _paired(entry["ours"], entry.get("pyncette"))
            out.append(
                f"| {pair_label(store, broker)} | {n:,} | {_rate(ours)} | {_rate(limit)} "
                f"| {_ratio(paired, 1.0)} | {_rate(redbeat)}{rb_mark} | {_ratio(by_redbeat, 1.0)} "
                f"| {_rate(pyncette)}{py_mark} | {_ratio(by_pyncette, 1.0)} "
                f"| {_rate(stock)}{st_mark} | {_rate(sqla)}{sq_mark} |"
            )
            if paired:
                targets.add(
                    f"dispatch ≥ 0.8 x limit, {pair_label(store, broker)}, N={n:,}",
                    f"{paired:.2f}x",
                    paired >= 0.8,
                )
            if by_redbeat:
                targets.add(
                    f"dispatch ≥ 10 x RedBeat, N={n:,}",
                    f"{by_redbeat:.1f}x",
                    by_redbeat >= 10,
                )
            if by_pyncette:
                # what the physical limit itself reaches against Pyncette, in the same repeats
                limit_by_pyncette = _paired(entry["limit"], entry.get("pyncette"))
                bound = f" (the limit: {limit_by_pyncette:.1f}x)" if limit_by_pyncette else ""
                targets.add(
                    f"dispatch ≥ 5 x Pyncette, {STORE_LABEL[store]}, N={n:,}",
                    f"{by_pyncette:.1f}x{bound}",
                    by_pyncette >= 5,
                )
    return [*out, ""]


def _paired(ours: list[float], theirs: list[float] | None) -> float | None:
    """The median of the ratios of runs made back to back."""
    return _med([o / t for o, t in zip(ours, theirs or [], strict=False) if t])


def _n(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


def _schedule(results: dict[str, Any], targets: Targets) -> list[str]:
    schedule = results.get("schedule", {})
    if not schedule:
        return []
    out = [
        "### Scheduling: instances written per second",
        "",
        "Single: `schedule_task` with a weekday cron, one at a time. Bulk: `schedule_tasks` with "
        "the same cron for every instance, and with once-off instances (`execute_at`).",
        "",
        "| store | single, cron | bulk, cron | bulk, once-off |",
        "|---|---:|---:|---:|",
    ]
    goals = {"redis": 20_000, "postgresql": 5_000}
    for store in STORES:
        entry = schedule.get(store)
        if not entry:
            continue
        if "error" in entry:
            out.append(f"| {STORE_LABEL[store]} | failed | failed |")
            continue
        single, bulk = _med(entry["single"]), _med(entry["bulk"])
        once = _med(entry.get("bulk_once"))
        out.append(f"| {STORE_LABEL[store]} | {_rate(single)} | {_rate(bulk)} | {_rate(once)} |")
        for label, value in (("cron", bulk), ("once-off", once)):
            if store in goals and value:
                targets.add(
                    f"bulk scheduling ≥ {goals[store]:,}/s, {STORE_LABEL[store]}, {label}",
                    f"{value:,.0f}/s",
                    value >= goals[store],
                )
    return [*out, ""]


def _idle(results: dict[str, Any], targets: Targets) -> list[str]:
    idle = results.get("idle", {})
    if not idle:
        return []
    sizes = sorted({int(k.split(":")[1]) for entry in idle.values() for k in entry if ":" in k})
    head = " | ".join(f"{n:,}" for n in sizes)
    out = [
        "### Idle tick and beat memory by instances stored (nothing due)",
        "",
        "A fresh beat process per figure: median `tick()` time in ms (of the quietest of several "
        "rounds of 200, half a second apart), then its resident memory in MB; *worst ÷* is the "
        "largest of the bigger sizes over the smallest: for ticks, each bigger size over the "
        "smallest size's tick measured around it (a second store holds the smallest size "
        "throughout). The broker plays no part in an idle tick, so Redis → RabbitMQ shares "
        "the Redis row.",
        "",
        f"| store | partitions | tick ms: {head} | worst ÷ | RSS MB: {head} | worst ÷ |",
        "|---|---:|" + "---:|" * (2 * len(sizes) + 2),
    ]
    for store in STORES:
        entry = idle.get(store)
        if not entry:
            continue
        if "error" in entry:
            out.append(f"| {STORE_LABEL[store]} | failed |")
            continue
        for partitions in (1, 32):
            rows = {n: entry.get(f"{partitions}:{n}") for n in sizes}
            if not any(rows.values()):
                continue
            ticks = [rows[n]["tick_ms"] if rows[n] else None for n in sizes]
            rss = [rows[n]["rss_mb"] if rows[n] else None for n in sizes]
            measured = [(n, r) for n, r in rows.items() if r]
            first = measured[0]
            # the worst larger size against the smallest, so a bump in the middle is not hidden;
            # each against the smallest size's tick measured beside it, where there is one
            tick_ratio = max(
                r["tick_ms"] / r.get("reference_tick_ms", first[1]["tick_ms"])
                for _, r in measured[1:] or measured
            )
            rss_ratio = max(r["rss_mb"] for _, r in measured[1:] or measured) / first[1]["rss_mb"]
            out.append(
                f"| {STORE_LABEL[store]} | {partitions} | "
                + " | ".join(_ms(t) for t in ticks)
                + f" | {tick_ratio:.2f}x | "
                + " | ".join(_ms(r) for r in rss)
                + f" | {rss_ratio:.2f}x |"
            )
            if len(measured) > 1:
                span = f"worst of {', '.join(f'{n:,}' for n, _ in measured[1:])} vs {first[0]:,}"
                targets.add(
                    f"idle tick ≤ 1.3x ({span}), {STORE_LABEL[store]}, {partitions} partition(s)",
                    f"{tick_ratio:.2f}x",
                    tick_ratio <= 1.3,
                )
                targets.add(
                    f"beat RSS ≤ 1.2x ({span}), {STORE_LABEL[store]}, {partitions} partition(s)",
                    f"{rss_ratio:.2f}x",
                    rss_ratio <= 1.2,
                )
    peers = results.get("peers", {}).get("idle", {})
    if peers:
        out += [
            "",
            "Peers' idle tick (ms) in the same run:",
            "",
            "| peer | store | stored | partitions | tick ms |",
            "|---|---|---:|---:|---:|",
        ]
        for peer, rows in peers.items():
            for where, value in rows.items():
                store, _, spec = where.partition("/")
                n, _, partitions = spec.partition(":")
                shown = "failed" if isinstance(value, dict) else _ms(value)
                out.append(
                    f"| {peer} | {STORE_LABEL.get(store, store)} | {int(n):,} "
                    f"| {partitions or '-'} | {shown} |"
                )
    return [*out, ""]


#: How ``benchmarks.latency.fleet`` marks a fleet on a Redis broker without ack emulation.
ACKS_OFF = "Redis ack emulation off"


def _latency(results: dict[str, Any], targets: Targets) -> list[str]:
    latency = results.get("latency", {})
    if not latency:
        return []
    fleets = [entry.get("fleet", "?") for entry in latency.values() if "error" not in entry]
    nodes = ", ".join(sorted({fleet.split(", ")[0] for fleet in fleets}))
    if any(fleet.endswith(ACKS_OFF) for fleet in fleets):
        nodes += "; with the Redis broker, kombu's ack emulation off"
    out = [
        "### Due → worker start, 1,000 occurrences due per second",
        "",
        f"A real `celery beat -S pyncette` (poll interval 1 s) and real workers ({nodes}) on the "
        "same 2 cores as the servers. *sent* is beat's share: when the message left beat. "
        "Medians of the runs (made in rounds over the pairs); *p99 of each run* lists them.",
        "",
        "| store → broker | p50 ms | p99 ms | sent p50 ms | sent p99 ms | p99 of each run "
        "| poll interval + 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for store, broker in PAIRS:
        entry = latency.get(f"{store}:{broker}")
        if not entry:
            continue
        if "error" in entry:
            out.append(f"| {pair_label(store, broker)} | failed | | | | | |")
            continue
        bound = entry["poll_interval_ms"] + 100
        out.append(
            f"| {pair_label(store, broker)} | {_ms(entry['p50_ms'])} | {_ms(entry['p99_ms'])} "
            f"| {_ms(entry.get('sent_p50_ms'))} | {_ms(entry.get('sent_p99_ms'))} "
            f"| {' / '.join(_ms(v) for v in entry.get('p99_runs', [entry['p99_ms']]))} "
            f"| {bound:,.0f} |"
        )
        targets.add(
            f"latency p99 ≤ poll interval + 100 ms, {pair_label(store, broker)}",
            f"{entry['p99_ms']:,.0f} ms (beat's share {_ms(entry.get('sent_p99_ms'))} ms)",
            entry["p99_ms"] <= bound,
        )
    return [*out, ""]


def splice(markdown: str, command: str) -> None:
    """Put ``markdown`` between the markers of each spliced file (which must have them)."""
    block = f"{START}\n<!-- generated by `{command}`; do not edit -->\n\n{markdown}\n{END}"
    for path in SPLICED:
        text = path.read_text()
        if START not in text or END not in text:
            raise SystemExit(f"{path} has no {START} ... {END} markers")
        before, rest = text.split(START, 1)
        _, after = rest.split(END, 1)
        path.write_text(before + block + after)


def _worker(results: dict[str, Any]) -> list[str]:
    runs = results.get("worker")
    if not runs:
        return []
    if "error" in runs:
        return ["### Worker: what one execution costs", "", f"failed: {runs['error']}", ""]
    plain = [run["cpu_us"] for run in runs.get("plain", [])]
    out = [
        "### Worker: what one execution costs",
        "",
        "One `celery worker -P solo` (Redis broker, ack emulation off) drains a queue of "
        "messages: of a plain Celery task, or of celery-pyncette's task sent by beat from each "
        "store. CPU is the worker process's own (the store's server is not counted); *÷ plain* "
        "is the median of the ratios of drains made back to back. celery-pyncette adds a lease "
        "check before each run and a commit after it.",
        "",
        "| task | executions/s | worker CPU µs per execution | ÷ plain |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "plain": "plain Celery task, no store",
        **{s: f"celery-pyncette, {STORE_LABEL[s]} store" for s in STORES},
    }
    for side, label in labels.items():
        measured = runs.get(side)
        if not measured:
            continue
        cpu = [run["cpu_us"] for run in measured]
        ratio = _paired(cpu, plain) if side != "plain" else 1.0
        out.append(
            f"| {label} | {_rate(_med([run['rate'] for run in measured]))} "
            f"| {_med(cpu) or 0:,.0f} | {_ratio(ratio, 1.0)} |"
        )
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--splice", action="store_true")
    options = parser.parse_args()
    results = json.loads(options.input.read_text())
    markdown = render(results)
    options.input.with_suffix(".md").write_text(markdown)
    if options.splice:
        splice(markdown, results["meta"]["command"])
    print(markdown)


if __name__ == "__main__":
    main()
