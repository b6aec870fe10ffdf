"""Fixtures of the dashboard tests: a demo app on a SQLite store, served by uvicorn; Chromium."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from celery_pyncette import _clock as clock
from celery_pyncette import _registry as registry
from celery_pyncette._dispatch import sync_static
from tests.support.servers import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass
class Demo:
    """A Celery app with a static, a dynamic and a partitioned task, and some instances."""

    app: Celery
    pyncette: Pyncette
    hello: Any


def make_demo(store_url: str, instances: int = 30) -> Demo:
    app = Celery("dashboard_demo", broker="memory://", set_as_current=False)
    pyncette = Pyncette(app, url=store_url)

    @pyncette.task(name="reports.daily", schedule="0 7 * * *", timezone="Europe/Dublin")
    def daily(context: Context) -> None: ...

    @pyncette.dynamic_task(name="reminders.hello")
    def hello(context: Context) -> None: ...

    @pyncette.partitioned_task(name="billing.invoice", partition_count=4)
    def invoice(context: Context) -> None: ...

    pyncette.schedule_tasks(
        hello,
        {f"user-{i:03d}": {"user_id": i} for i in range(instances)},
        interval=timedelta(minutes=15),
    )
    pyncette.schedule_task(hello, "team-ops", schedule="0 9 * * 1-5", timezone="Europe/Dublin")
    for customer in ("acme", "globex", "initech"):
        pyncette.schedule_task(invoice, customer, schedule="0 6 1 * *", customer=customer)
    now = clock.utcnow()
    sync_static(pyncette.runtime, pyncette.definitions(), now)  # as a starting beat does
    registry.record_beat(
        pyncette.store,
        "web-1:4242:ab12cd34",
        hostname="web-1",
        pid=4242,
        started_at=now - timedelta(hours=3),
        partitions={"reports.daily": [0], "reminders.hello": [0], "billing.invoice": [0, 1, 2, 3]},
        now=now,
    )
    return Demo(app, pyncette, hello)


@dataclass
class Served:
    """A dashboard listening on ``base_url``."""

    base_url: str
    demo: Demo


def serve(asgi_app: Any) -> Iterator[str]:
    """Run ``asgi_app`` under uvicorn in a thread on a free loopback port; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        asgi_app, log_level="warning", lifespan="off", ws="none", http="h11", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from celery_pyncette.dashboard import create_app

    store = tmp_path_factory.mktemp("dashboard") / "store.sqlite3"
    demo = make_demo(f"sqlite:///{store}")
    try:
        for url in serve(create_app(demo.pyncette, writable=True, title="Demo")):
            yield Served(url, demo)
    finally:
        demo.pyncette.close()
        demo.app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Selenium and Debian's chromedriver (nothing downloaded)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = (
            f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        )
        if IN_CI:
            pytest.fail(f"{message}; CI=true: browser tests must run, not skip")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1280,900", "--lang=en-US",
    ):  # fmt: skip
        options.add_argument(argument)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: Any) -> Callable[[str], Path]:
    """Save the current page as ``test-artifacts/screenshots/<name>.png``."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(900, min(int(height) + 40, 2400)))
        assert browser.save_screenshot(str(path)), f"no screenshot for {name}"
        browser.set_window_size(1280, 900)
        return path

    return take
