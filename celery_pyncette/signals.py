"""The scheduler's own events, as Celery ``Signal`` objects (made like ``celery.signals``).

Connect a receiver as with Celery's signals::

    from celery_pyncette import signals

    @signals.occurrence_sent.connect
    def on_sent(sender, task, instance, partition, scheduled_at, **kwargs):
        ...

``sender`` is the task's name, except for ``record_quarantined``, whose sender is the task
name of the record. Every signal carries keyword arguments only; accept ``**kwargs`` so that
arguments added later do not break a receiver. A receiver that raises is logged by Celery
(``celery.utils.dispatch.signal``) and never stops dispatch or settlement. Receivers run in the
process that sends: beat for ``occurrence_claimed``, ``occurrence_sent``, a strike found by
beat and an occurrence it settles as missed or expired, the worker for the rest. Keep them quick:
beat sends a batch between them.

=======================  =======  =================================================================
signal                   process  arguments (besides ``sender``)
=======================  =======  =================================================================
``occurrence_claimed``   beat     ``task``, ``instance`` (``None``: static), ``partition``,
                                  ``scheduled_at`` (aware UTC), ``lease`` (the claim's token)
``occurrence_sent``      beat     ``task``, ``instance``, ``partition``, ``scheduled_at``
``occurrence_struck``    both     ``task``, ``instance``, ``partition``, ``scheduled_at``,
                                  ``strike`` (a :class:`~celery_pyncette.Strike`), ``by``
                                  (``"beat"`` or ``"worker"``)
``occurrence_settled``   both     ``task``, ``instance``, ``partition``, ``scheduled_at``,
                                  ``outcome``: ``"success"`` / ``"failed"`` / ``"struck"``
                                  (committed), ``"expired"`` (its message came after its
                                  expiry; beat too, at claim), ``"missed"`` (beat: claimed past
                                  its misfire grace),
                                  ``"unlocked"`` (runs again at once), ``"kept"`` (the lease is
                                  kept, runs again after it), ``"removed"`` (unscheduled or no
                                  later run), ``"rescheduled"``, ``"not settled"`` (at-most-once:
                                  beat settled it before sending)
``lease_lost``           worker   ``task``, ``instance``, ``partition``, ``scheduled_at``: the
                                  lease was taken over (the run is skipped or its outcome is not
                                  recorded)
``record_quarantined``   both     ``key`` (:class:`~celery_pyncette.stores.base.InstanceKey`),
                                  ``reason``, ``found_by``
=======================  =======  =================================================================
"""

from __future__ import annotations

from celery.utils.dispatch import Signal

__all__ = [
    "lease_lost",
    "occurrence_claimed",
    "occurrence_sent",
    "occurrence_settled",
    "occurrence_struck",
    "record_quarantined",
]

_OCCURRENCE = {"task", "instance", "partition", "scheduled_at"}

occurrence_claimed = Signal(name="occurrence_claimed", providing_args=_OCCURRENCE | {"lease"})
occurrence_sent = Signal(name="occurrence_sent", providing_args=_OCCURRENCE)
occurrence_struck = Signal(name="occurrence_struck", providing_args=_OCCURRENCE | {"strike", "by"})
occurrence_settled = Signal(name="occurrence_settled", providing_args=_OCCURRENCE | {"outcome"})
lease_lost = Signal(name="lease_lost", providing_args=_OCCURRENCE)
record_quarantined = Signal(name="record_quarantined", providing_args={"key", "reason", "found_by"})
