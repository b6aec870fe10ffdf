"""The celery-pyncette dashboard: an ASGI app (Starlette) for the people on call.

``pip install 'celery-pyncette[dashboard]'``, then::

    from celery_pyncette.dashboard import create_app

    dashboard = create_app(pyncette, writable=True, token=os.environ["PYNCETTE_DASHBOARD_TOKEN"])
    # mount it: FastAPI/Starlette ``app.mount("/pyncette", dashboard)``; or run it alone:
    # uvicorn proj.dashboard:dashboard

Server-rendered pages (tasks, instances, one instance, strikes, beats) over a JSON API under
``/api``. Read-only unless ``writable=True``; see :func:`create_app` for authorisation and tokens,
and :mod:`celery_pyncette.dashboard._security` for the checks every request passes.
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"the dashboard needs {exc.name}: pip install 'celery-pyncette[dashboard]'"
    ) from exc

from celery_pyncette.dashboard._app import create_app

__all__ = ["create_app"]
