"""Beat's health verdict (``_health``), the rule it shares with ``status``, and its HTTP server."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette, StoreError
from celery_pyncette import _registry as registry
from celery_pyncette._health import STUCK_AT_LEAST, STUCK_POLLS, BeatHealth, Verdict, stuck_after
from celery_pyncette._health_server import HealthServer
from celery_pyncette._records import beat_key
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores.base import Store
from celery_pyncette.stores.memory import MemoryStore

OWNER = "host:1:abcdef01"
START = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class Ticking:
    """A driven monotonic clock and store clock, moved together."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.now = START

    def monotonic(self) -> float:
        return self.seconds

    def store_now(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.now += timedelta(seconds=seconds)


class CountingStore(MemoryStore):
    """Counts the registry reads (each starts with a first page); while ``flowing`` is clear,
    every read waits for it."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.reads = 0
        self.fail: Exception | None = None
        self.flowing = threading.Event()
        self.flowing.set()

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> Any:
        self.reads += after is None
        self.flowing.wait(10)
        if self.fail is not None:
            raise self.fail
        return super().list_instances(task, partition, limit, after)


@pytest.fixture
def clock() -> Ticking:
    return Ticking()


@pytest.fixture
def store() -> Iterator[CountingStore]:
    created = CountingStore()
    created.setup()
    yield created
    created.flowing.set()
    created.close()


def report(store: Store, owner: str, at: datetime) -> None:
    registry.record_beat(
        store, owner, hostname="host", pid=1, started_at=START, partitions={}, now=at
    )


def health_of(store: Store, clock: Ticking, **kwargs: Any) -> BeatHealth:
    kwargs.setdefault("answer_within", 5.0)  # a read of the memory store ends at once
    return BeatHealth(
        OWNER, lambda: store, clock.store_now, 1.0, monotonic=clock.monotonic, **kwargs
    )


def ticked(store: Store, clock: Ticking, health: BeatHealth) -> None:
    """What a successful beat tick leaves behind: its record, then the report to the verdict."""
    report(store, OWNER, clock.now)
    health.tick_succeeded()


# --- the rule shared with `celery pyncette status` -----------------------------------------------


def test_the_status_rule_judges_all_beats_or_one() -> None:
    now = START + timedelta(minutes=5)
    fresh = registry.BeatInfo("fresh", "h", 1, START, now - timedelta(seconds=2), {})
    stale = registry.BeatInfo("stale", "h", 2, START, now - timedelta(seconds=45), {})

    assert registry.beat_problems([fresh, stale], now) == [
        "beat stale is stale: last report 45s ago"
    ]
    assert registry.beat_problems([stale], now) == [
        "no beat is alive",
        "beat stale is stale: last report 45s ago",
    ]
    assert registry.beat_problems([fresh, stale], now, "fresh") == [], "others are not its problem"
    assert registry.beat_problems([fresh, stale], now, "stale") == [
        "beat stale is stale: last report 45s ago"
    ]
    assert registry.beat_problems([fresh], now, "gone") == ["beat gone has no record in the store"]


# --- the verdict ---------------------------------------------------------------------------------


def test_a_beat_is_unhealthy_until_its_first_tick_then_healthy(
    store: CountingStore, clock: Ticking
) -> None:
    health = health_of(store, clock)

    assert health.verdict().problems == (
        "beat has not completed its first tick yet (started 0s ago)",
    )
    assert store.reads == 0, "no record is looked for before the first tick"
    ticked(store, clock, health)

    assert health.verdict() == Verdict(())
    assert health.verdict().body() == "healthy\n"


def test_failing_ticks_are_a_problem_until_one_succeeds(
    store: CountingStore, clock: Ticking
) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)
    health.tick_failed(StoreError("connection refused"))
    health.tick_failed(StoreError("connection refused\nagain"))

    verdict = health.verdict()

    assert not verdict.healthy
    assert verdict.body() == (
        "unhealthy\nbeat's ticks are failing: 2 in a row, last: "
        "StoreError: connection refused again\n"
    )
    ticked(store, clock, health)
    assert health.verdict().healthy


def test_a_failed_tick_then_a_hang_reports_both(store: CountingStore, clock: Ticking) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)
    health.tick_failed(StoreError("connection reset"))
    report(store, OWNER, clock.now + timedelta(seconds=11))  # keep the store's rule out of it
    clock.advance(11)

    assert health.verdict().problems == (
        "beat's ticks are failing: 1 in a row, last: StoreError: connection reset",
        "beat's last tick ended 11s ago (more than 10s: a tick hangs, or beat stopped ticking)",
    )


def test_a_tick_that_never_ends_makes_beat_unhealthy(store: CountingStore, clock: Ticking) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)
    limit = stuck_after(1.0)
    assert limit == STUCK_POLLS * 1.0
    assert stuck_after(0.2) == STUCK_AT_LEAST == 5.0, "a short poll interval has a floor"

    clock.advance(limit - 1)
    report(store, OWNER, clock.now)  # the store alone would still call it alive
    assert health.verdict().healthy
    clock.advance(2)

    assert health.verdict().problems == (
        "beat's last tick ended 11s ago (more than 10s: a tick hangs, or beat stopped ticking)",
    )


def test_the_no_tick_problem_after_start_up_is_bounded_too(
    store: CountingStore, clock: Ticking
) -> None:
    health = health_of(store, clock)
    clock.advance(stuck_after(1.0) + 5)

    assert health.verdict().problems == ("no tick has ended since beat started 15s ago",)


def test_the_store_rule_reports_this_beats_stale_or_missing_record(
    store: CountingStore, clock: Ticking
) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)
    report(store, "other:2:00000000", clock.now - timedelta(minutes=10))  # someone else's, stale

    assert health.verdict().healthy, "another beat's stale record is not this beat's problem"

    clock.now += registry.STALE_AFTER + timedelta(seconds=1)  # store clock only: ticks go on
    clock.advance(1.0)
    health.tick_succeeded()
    assert health.verdict().problems == (f"beat {OWNER} is stale: last report 32s ago",)

    store.delete(beat_key(OWNER))
    clock.advance(1.0)
    assert health.verdict().problems == (f"beat {OWNER} has no record in the store",)


def test_a_store_that_cannot_be_read_is_the_reason(store: CountingStore, clock: Ticking) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)
    store.fail = StoreError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    assert health.verdict().problems == (
        "the store cannot be read: StoreError: Error 111 connecting to 127.0.0.1:6379. "
        "Connection refused.",
    )


def test_the_store_is_read_at_most_once_per_poll_interval(
    store: CountingStore, clock: Ticking
) -> None:
    health = health_of(store, clock)
    ticked(store, clock, health)

    verdicts = [health.verdict() for _ in range(20)]
    assert store.reads == 1
    clock.advance(0.9)
    health.verdict()
    assert store.reads == 1
    clock.advance(0.2)
    health.verdict()

    assert store.reads == 2
    assert all(v.healthy for v in verdicts)


def test_a_store_that_hangs_never_hangs_the_probe(store: CountingStore, clock: Ticking) -> None:
    health = health_of(store, clock, answer_within=0.0)
    ticked(store, clock, health)
    store.flowing.clear()

    assert health.verdict().healthy, "a read in flight is not yet a problem"
    clock.advance(stuck_after(1.0) + 1)
    health.tick_succeeded()  # ticks may still end (a store that hangs for reads only)
    problems = health.verdict().problems

    assert problems == ("the store has not answered a health read for 11s",)
    assert store.reads == 1, "no second read is started while one hangs"
    store.flowing.set()


# --- the HTTP server -----------------------------------------------------------------------------


def get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[list[Verdict], str]]:
    """A server on an ephemeral port answering the last verdict in the list."""
    verdicts = [Verdict(())]
    server = HealthServer("127.0.0.1", 0, lambda: verdicts[-1])
    host, port = server.address
    yield verdicts, f"http://{host}:{port}"
    server.close()


def test_the_server_answers_200_then_503_with_the_reasons(
    served: tuple[list[Verdict], str],
) -> None:
    verdicts, base = served

    assert get(base + "/healthz") == (200, "healthy\n")
    verdicts.append(Verdict(("the store cannot be read: boom", "beat's ticks are failing")))

    assert get(base + "/healthz") == (
        503,
        "unhealthy\nthe store cannot be read: boom\nbeat's ticks are failing\n",
    )
    assert get(base + "/healthz", method="HEAD") == (503, "")


def test_other_paths_are_404(served: tuple[list[Verdict], str]) -> None:
    _, base = served

    for path in ("/", "/health", "/healthz/more", "/metrics"):
        status, body = get(base + path)
        assert status == 404, path
        assert "/healthz" in body


def test_a_verdict_that_raises_is_a_503_saying_so() -> None:
    def broken() -> Verdict:
        raise RuntimeError("bug")

    server = HealthServer("127.0.0.1", 0, broken)
    try:
        host, port = server.address
        status, body = get(f"http://{host}:{port}/healthz")
    finally:
        server.close()

    assert status == 503
    assert "the health verdict failed: RuntimeError: bug" in body


def test_close_stops_serving() -> None:
    server = HealthServer("127.0.0.1", 0, lambda: Verdict(()))
    _, port = server.address
    assert listening(port)
    server.close()
    server.close()

    assert not listening(port)


# --- beat serves it ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_beat_serves_healthz_from_setup_to_close(app: Celery) -> None:
    port = free_port()
    pyncette = Pyncette(
        app, url="memory://", health_port=str(port), health_host="127.0.0.1", poll_interval=1.0
    )

    @pyncette.task(schedule="* * * * * *", name="job")
    def job(context: Context) -> None: ...

    banner = Scheduler(app, lazy=True)
    assert not listening(port), "the lazy banner scheduler serves nothing"
    banner.close()

    scheduler = Scheduler(app)
    try:
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert (status, body.splitlines()[0]) == (503, "unhealthy")
        scheduler.tick()
        assert get(f"http://127.0.0.1:{port}/healthz") == (200, "healthy\n")
    finally:
        scheduler.close()

    assert not listening(port), "close() stopped the server"


def test_a_port_in_use_stops_beat_naming_the_setting(app: Celery) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        Pyncette(app, url="memory://", health_port=port, health_host="127.0.0.1")

        with pytest.raises(
            ConfigurationError, match=f"pyncette_health_port: cannot listen on 127.0.0.1:{port}"
        ):
            Scheduler(app)


def test_a_host_that_is_no_address_stops_beat_naming_the_setting(app: Celery) -> None:
    Pyncette(app, url="memory://", health_port=free_port(), health_host="no such host.invalid")

    with pytest.raises(ConfigurationError, match=r"pyncette_health_host: 'no such host\.invalid'"):
        Scheduler(app)
