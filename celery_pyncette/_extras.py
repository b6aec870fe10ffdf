"""Reading and removing the extra occurrences (run now, backfill) of one instance.

An instance's extra occurrences sit in its task partition under one name prefix
(:func:`celery_pyncette._records.extra_prefix`), so they are one contiguous range of the
partition's names: read here page by page, without the partition's other records.
"""

from __future__ import annotations

from collections.abc import Iterator

from celery_pyncette._records import extra_prefix
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store

#: Extra occurrences read per page.
PAGE = 100


def extras_of(
    store: Store, task: str, partition: int, instance: str | None
) -> Iterator[InstanceRecord]:
    """The extra occurrences of ``instance`` (``None``: the static task) in one task partition,
    in time order."""
    prefix = extra_prefix(instance)
    after = prefix[:-1]  # every name with the prefix sorts after it, and no other name between
    while page := store.list_instances(task, partition, PAGE, after):
        for record in page:
            if not record.key.instance.startswith(prefix):
                return
            yield record
        after = page[-1].key.instance


def drop_extras(store: Store, keys: list[InstanceKey]) -> int:
    """Delete the extra occurrences of the instances at ``keys`` (running or not: their instance
    is gone); how many there were."""
    removed = 0
    for key in keys:
        for record in list(extras_of(store, key.task, key.partition, key.instance)):
            removed += store.delete(record.key)
    return removed
