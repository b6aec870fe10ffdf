"""A tiny Celery project for the CLI tests: a preload option ``--store`` picks the store URL."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from click import Option

from celery_pyncette import Context, Pyncette

app = Celery("cli_proj", broker="memory://", set_as_current=False)
app.user_options["preload"].add(Option(["--store"], default=None, help="Schedule store URL."))
app.conf.pyncette_url = "memory://"
pyncette = Pyncette(app)


@signals.user_preload_options.connect
def use_store(app: Celery, options: dict[str, Any], **kwargs: Any) -> None:
    if options.get("store"):
        app.conf.pyncette_url = options["store"]


@pyncette.dynamic_task(name="cli.hello")
def hello(context: Context) -> None:
    print(f"hello {context.args['username']}")


__all__ = ["app", "hello"]
