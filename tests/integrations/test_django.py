"""The Django example project (examples/django_project): settings under ``CELERY_``, a view that
schedules on commit, a management command, the dashboard mounted in Django's ASGI app."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_project"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The example project on a fresh SQLite database and the memory store."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLE))
        patch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
        patch.setenv("DJANGO_DB", str(tmp_path_factory.mktemp("django") / "db.sqlite3"))
        patch.setenv("PYNCETTE_URL", "memory://")
        patch.setenv("CELERY_BROKER_URL", "memory://")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        from mysite.celery import pyncette

        yield pyncette


def make_user(name: str, *, staff: bool = False) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(name, password="pw", is_staff=staff)


def signed_in(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_celery_namespace_settings_reach_pyncette(project: Any) -> None:
    settings = project.settings

    assert settings.url == "memory://"
    assert settings.poll_interval == 1.0
    assert settings.lease_duration.total_seconds() == 120
    assert project.app.conf.beat_scheduler == "celery_pyncette.Scheduler"


def test_the_view_schedules_the_users_reminder_after_commit(project: Any) -> None:
    from reminders.tasks import remind

    user = make_user("ann")
    client = signed_in(user)

    response = client.post(
        "/reminders/",
        json.dumps({"cron": "0 9 * * 1-5", "timezone": "Europe/Dublin"}),
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    state = project.get_task_state(remind, f"user-{user.pk}")
    assert state is not None
    assert (state.schedule, state.timezone, dict(state.args)) == (
        "0 9 * * 1-5",
        "Europe/Dublin",
        {"user_id": user.pk},
    )
    shown = client.get("/reminders/").json()
    assert shown["next_run"] == state.scheduled_at.isoformat()


def test_a_rolled_back_transaction_schedules_nothing(project: Any) -> None:
    from django.db import transaction
    from reminders import services
    from reminders.models import Reminder
    from reminders.tasks import remind

    user = make_user("bob")

    def failing_request() -> None:
        with transaction.atomic():
            services.subscribe(user.pk, "0 8 * * *", "UTC")
            raise RuntimeError("the request failed after saving")

    with pytest.raises(RuntimeError):
        failing_request()

    assert not Reminder.objects.filter(user=user).exists()
    assert project.get_task_state(remind, f"user-{user.pk}") is None


def test_an_invalid_schedule_is_a_400_and_saves_nothing(project: Any) -> None:
    from reminders.models import Reminder

    user = make_user("cid")
    response = signed_in(user).post(
        "/reminders/", json.dumps({"cron": "0 25 * * *"}), content_type="application/json"
    )

    assert response.status_code == 400
    assert "invalid cron expression" in response.json()["error"]
    assert not Reminder.objects.filter(user=user).exists()


def test_deleting_the_reminder_unschedules_it(project: Any) -> None:
    from reminders import services
    from reminders.tasks import remind

    user = make_user("dee")
    services.subscribe(user.pk, "*/5 * * * *", "UTC")
    assert project.get_task_state(remind, f"user-{user.pk}") is not None

    response = signed_in(user).delete("/reminders/")

    assert response.status_code == 204
    assert project.get_task_state(remind, f"user-{user.pk}") is None


def test_the_task_runs_with_the_instance_arguments(
    project: Any,
) -> None:
    from reminders import services
    from reminders.tasks import remind

    user = make_user("eve")
    services.subscribe(user.pk, "0 7 * * *", "UTC", "Drink water")

    assert remind.apply(kwargs={"user_id": user.pk}).get() == "reminded eve"
    assert remind.apply(kwargs={"user_id": 10**9}).get() == "gone"


def test_the_management_command_syncs_the_store_with_the_rows(project: Any) -> None:
    from django.core.management import call_command
    from reminders.models import Reminder
    from reminders.tasks import remind

    user = make_user("fay")
    Reminder.objects.create(user=user, cron="15 6 * * *", timezone="UTC")  # saved, not scheduled
    project.schedule_task(remind, "user-999999", interval=__import__("datetime").timedelta(hours=1))
    output = io.StringIO()

    call_command("reminders", "--sync", stdout=output)

    assert project.get_task_state(remind, f"user-{user.pk}").schedule == "15 6 * * *"
    assert project.get_task_state(remind, "user-999999") is None
    lines = output.getvalue().splitlines()
    assert lines[0].startswith("synced ")
    assert "removed 1 stale" in lines[0]
    assert any(line.startswith("fay") and "T06:15:00" in line for line in lines)


def test_the_dashboard_is_mounted_in_the_asgi_app_for_staff_only(project: Any) -> None:
    import httpx
    from django.conf import settings
    from mysite.asgi import application

    staff = signed_in(make_user("gus", staff=True)).cookies[settings.SESSION_COOKIE_NAME].value
    plain = signed_in(make_user("hal")).cookies[settings.SESSION_COOKIE_NAME].value

    async def fetch(path: str, session: str | None) -> httpx.Response:
        cookies = {settings.SESSION_COOKIE_NAME: session} if session else {}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.get(path)

    anonymous = asyncio.run(fetch("/pyncette/", None))
    not_staff = asyncio.run(fetch("/pyncette/api/tasks", plain))
    page = asyncio.run(fetch("/pyncette/", staff))
    api = asyncio.run(fetch("/pyncette/api/tasks", staff))
    django_view = asyncio.run(fetch("/reminders/", None))

    assert (anonymous.status_code, not_staff.status_code) == (403, 403)
    assert page.status_code == 200
    assert 'href="/pyncette/tasks/reminders.remind"' in page.text
    assert [t["task"] for t in api.json()] == ["reminders.remind"]
    assert django_view.status_code == 302  # Django's login_required, not the dashboard
