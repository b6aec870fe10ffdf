"""Publishing occurrences as ordinary Celery task messages, a batch at a time.

The dispatcher hands a :class:`Publisher` a batch of :class:`OutgoingMessage`; the publisher
reports which messages the broker did not take, so their claims can be released. Every message
is one that any Celery worker consumes, and Celery's ``before_task_publish`` /
``after_task_publish`` signals fire as usual.

The package, one job per module:

* ``_publisher``: the connection, the batch, what was not taken;
* ``_factory``: the emulation of Celery's message factory, the only module touching Celery's
  private API, used only where ``_guard`` finds the Celery and kombu it was verified on;
* ``_plain``: each message through ``app.send_task``, the fallback and the tests' oracle;
* ``_routing``: a batch's route and the queues to declare; ``_confirms``: RabbitMQ's publisher
  confirms; ``_redis_batch``: one ``LPUSH`` per queue and batch on Redis;
* ``_repr``: the fast ``argsrepr`` / ``kwargsrepr``; ``_message``: the shapes they share.
"""

from __future__ import annotations

from celery_pyncette._publish._message import PUBLISH_TIMEOUT, MessageSender, OutgoingMessage
from celery_pyncette._publish._publisher import CONFIRM_TIMEOUT, CONFIRM_WINDOW, Publisher
from celery_pyncette._publish._repr import plain_repr

__all__ = [
    "CONFIRM_TIMEOUT",
    "CONFIRM_WINDOW",
    "PUBLISH_TIMEOUT",
    "MessageSender",
    "OutgoingMessage",
    "Publisher",
    "plain_repr",
]
