"""A real ``celery beat`` with ``pyncette_health_port`` set: ``GET /healthz`` follows the store.

Beat reaches a fresh Redis namespace through the test's :class:`Proxy`. The probe answers 200
while beat ticks; 503 with the reason when the store stops answering (the proxy holds every
request: ticks hang) and when it refuses (the proxy cuts every connection: ticks fail); 200 again
once the store is back; and nothing listens after beat stops.
"""

from __future__ import annotations

import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import Deployment, wait_until
from tests.faults.helpers import fault_store, wait_for_log
from tests.faults.proxy import proxy_to

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(150)]

Deploy = Callable[..., Deployment]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def probe(url: str) -> tuple[int, str] | None:
    """Status and body of ``GET url``; ``None`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None


def test_healthz_is_200_while_beat_ticks_and_503_with_the_reason_when_the_store_fails(
    deploy: Deploy, redis_broker: str
) -> None:
    port = free_port()
    healthz = f"http://127.0.0.1:{port}/healthz"
    seen: list[tuple[int, str] | None] = []

    def answers(status: int, *reasons: str) -> Callable[[], bool]:
        def check() -> bool:
            seen.append(probe(healthz))
            answer = seen[-1]
            return (
                answer is not None and answer[0] == status and all(r in answer[1] for r in reasons)
            )

        return check

    with fault_store("redis") as target:
        parts = urlsplit(target.url)
        with proxy_to(parts.hostname or "127.0.0.1", parts.port or 0) as proxy:
            # A read timeout longer than the stuck bound (5 s at this poll interval) and than the
            # proxy's own (it cuts a link silent for 10 s): a held request hangs the tick.
            url = target.via(proxy.port) + "?socket_timeout=60"
            deployed = deploy(
                redis_broker, url, target.namespace, ["every_second"],
                E2E_HEALTH_PORT=str(port), E2E_HEALTH_HOST="127.0.0.1",
            )  # fmt: skip
            deployed.start_beat("beat")
            deployed.must_live = {"beat"}
            wait_for_log(
                deployed, "beat", f"health endpoint on http://127.0.0.1:{port}/healthz", 30
            )

            # Given a beat that ticks, its probe is healthy, and only /healthz is served
            wait_until(deployed, answers(200, "healthy"), 30, "GET /healthz to answer 200")
            assert probe(f"http://127.0.0.1:{port}/") == (
                404,
                "not found; the health endpoint is /healthz\n",
            )

            # When the store stops answering, the tick hangs: 503, saying so
            proxy.pause()
            took = wait_until(
                deployed,
                answers(503, "unhealthy", "beat's last tick ended", "a tick hangs"),
                30,
                "GET /healthz to answer 503 for a hung tick",
                interval=0.5,
            )
            assert took < 9, f"a hung tick was reported after {took:.0f}s (bound: 5 s + a tick)"

            # When the store refuses every connection, ticks fail: 503 with the error
            proxy.down()
            wait_until(
                deployed,
                answers(503, "beat's ticks are failing"),
                20,
                "GET /healthz to answer 503 for failing ticks",
                interval=0.5,
            )
            assert "StoreError: Redis store" in str(seen[-1]), seen[-1]

            # When the store is back, so is the verdict
            proxy.up()
            wait_until(deployed, answers(200, "healthy"), 30, "GET /healthz to answer 200 again")

            # When beat stops, nothing listens any more
            deployed.kill("beat", signal.SIGTERM)
            assert deployed.processes["beat"].returncode == 0, deployed.log("beat")[-3000:]
            assert probe(healthz) is None
