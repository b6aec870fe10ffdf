"""The exceptions celery-pyncette raises.

Every error of the library derives from one root::

    PyncetteError
    ├── ConfigurationError   a pyncette_* setting, URL scheme or missing extra is wrong (start-up)
    ├── StoreError           the schedule store failed or is not set up (table missing, server down)
    │   └── BulkWriteError   a bulk write failed part-way; ``.written`` names what was written
    ├── LeaseLostError       a commit, unlock or heartbeat came after the lease was lost or taken
    ├── CorruptRecordError   a stored record cannot be decoded (``.key``, ``.reason``)
    └── TaskLockedError      replacing an instance that is running, without ``force=True``

Invalid user input (a cron expression, a timezone, an argument) is a plain ``ValueError``.
"""

from __future__ import annotations


class PyncetteError(Exception):
    """Root of every celery-pyncette error."""


class ConfigurationError(PyncetteError):
    """A setting, store URL or optional dependency is wrong; raised before anything starts."""


class StoreError(PyncetteError):
    """The store could not do what was asked (connection lost, schema missing, server error)."""


class LeaseLostError(PyncetteError):
    """The lease named in a commit, unlock or heartbeat is no longer the instance's lease."""


class CorruptRecordError(PyncetteError):
    """A stored record cannot be decoded: not JSON, a next run that is not a time, ...

    ``key`` is the record's :class:`~celery_pyncette.stores.base.InstanceKey`, ``reason`` what
    failed. Not a :class:`StoreError`: retrying the read cannot help, repairing the record can.
    """

    def __init__(self, key: object, reason: str) -> None:
        super().__init__(f"stored record {key} cannot be decoded: {reason}")
        self.key = key
        self.reason = reason


class TaskLockedError(PyncetteError):
    """The instance is locked by a running execution and ``force`` was not given."""


class BulkWriteError(StoreError):
    """A bulk write (``schedule_tasks``, ``scatter``) failed part-way.

    ``written`` lists the instances that were written before the failure.
    """

    def __init__(self, message: str, written: list[str]) -> None:
        super().__init__(message)
        self.written = list(written)
