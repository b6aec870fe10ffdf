"""``/reminders/``: the signed-in user's reminder (GET state, POST set, DELETE remove)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from mysite.celery import pyncette

from reminders import services
from reminders.models import Reminder
from reminders.tasks import remind


@login_required
def reminder(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
            saved = services.subscribe(
                request.user.pk,
                str(body["cron"]),
                str(body.get("timezone", "UTC")),
                body.get("message"),
            )
        except (KeyError, ValueError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse({"instance": saved.instance, "cron": saved.cron}, status=201)
    if request.method == "DELETE":
        with transaction.atomic():
            found = Reminder.objects.filter(user=request.user).first()
            if found is None:
                return JsonResponse({"error": "no reminder"}, status=404)
            found.delete()
            services.unschedule(found)
        return HttpResponse(status=204)
    state = pyncette.get_task_state(remind, f"user-{request.user.pk}")
    if state is None:
        return JsonResponse({"error": "no reminder"}, status=404)
    return JsonResponse(
        {
            "instance": state.instance,
            "cron": state.schedule,
            "timezone": state.timezone,
            "next_run": state.scheduled_at.isoformat(),
        }
    )
