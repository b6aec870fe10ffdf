"""Read-only views for the people on call: task summaries, instance search, beat health, backlog.

The CLI (``celery pyncette list|show|status``), the dashboard and the metrics read the store through
these functions only, and only through the store contract, so they work on every store. Nothing
here writes, except :func:`forget_stale_beats`, which removes the records of beats that stopped
without saying goodbye.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery_pyncette import _quarantine as quarantine
from celery_pyncette import _registry as registry
from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._extension import Pyncette
from celery_pyncette._records import EXTRA_PREFIX, is_extra_instance
from celery_pyncette._registry import BeatInfo
from celery_pyncette._state import TaskState, TaskStatePage, decode_token, encode_token
from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, Quarantined, Store

#: Instances read per store call while scanning (backlog, search).
SCAN_PAGE = 500


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """One declared task (or ``beat_schedule`` entry) and how many instances the store holds."""

    name: str
    celery_name: str
    kind: str  # "static" or "dynamic"
    source: str  # "decorator" or "beat_schedule"
    schedule: str | None
    execution_mode: str
    failure_mode: str
    partition_count: int
    enabled: bool
    instances: int
    next_run: datetime | None


@dataclass(frozen=True, slots=True)
class Backlog:
    """What one task has waiting: ``due`` instances are claimable now (due and unlocked or with an
    expired lease); ``running`` are under a live lease; ``oldest_due`` is the earliest next run
    among the due ones."""

    task: str
    due: int = 0
    running: int = 0
    oldest_due: datetime | None = None

    def overdue(self, now: datetime) -> timedelta | None:
        """How late the oldest due instance is at ``now``."""
        return None if self.oldest_due is None else max(now - self.oldest_due, timedelta(0))


@dataclass(frozen=True, slots=True)
class Health:
    """Beats, their freshness, and the due backlog, as ``celery pyncette status`` reports them."""

    now: datetime
    beats: list[BeatInfo]
    backlog: list[Backlog] | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Quarantined records, by key, at most :data:`quarantine.COUNT_LIMIT` of them ...
    quarantined: list[Quarantined] = field(default_factory=list)
    #: ... and whether there are more.
    quarantined_more: bool = False

    @property
    def healthy(self) -> bool:
        """False when no beat is alive or any beat is stale."""
        return not self.problems

    def stale(self) -> list[BeatInfo]:
        """The beats that have not reported for :data:`registry.STALE_AFTER`."""
        return [beat for beat in self.beats if beat.is_stale(self.now)]


def summarize(pyncette: Pyncette, names: Collection[str] | None = None) -> list[TaskSummary]:
    """Every task of the app (or those in ``names``) with its instance count and next run.

    The next run is known for static tasks only (a dynamic task's instances each have their own).
    """
    store = pyncette.store
    from_beat_schedule = pyncette.beat_schedule_definitions()
    summaries: list[TaskSummary] = []
    for definition in sorted(pyncette.definitions(), key=lambda d: d.name):
        if names is not None and definition.name not in names:
            continue
        count = sum(
            store.count_instances(definition.name, p) - _extras_in(store, definition.name, p)
            for p in range(definition.partition_count)
        )
        next_run = None
        if not definition.dynamic:
            try:
                record = store.get(InstanceKey(definition.name, 0, STATIC_INSTANCE))
            except CorruptRecordError:  # quarantined; listed by `quarantined`, not here
                record = None
            next_run = record.next_run if record is not None else None
        summaries.append(
            TaskSummary(
                name=definition.name,
                celery_name=definition.celery_name,
                kind="dynamic" if definition.dynamic else "static",
                source=(
                    "beat_schedule"
                    if from_beat_schedule.get(definition.name) == definition
                    else "decorator"
                ),
                schedule=definition.schedule.description if definition.schedule else None,
                execution_mode=definition.execution_mode.name,
                failure_mode=definition.failure_mode.name,
                partition_count=definition.partition_count,
                enabled=definition.enabled,
                instances=count,
                next_run=next_run,
            )
        )
    return summaries


def find_instances(
    pyncette: Pyncette,
    task: str,
    *,
    limit: int = 50,
    continuation_token: str | None = None,
    prefix: str | None = None,
) -> TaskStatePage:
    """A page of a dynamic task's instances; with ``prefix``, only names starting with it.

    Without a prefix this is :meth:`Pyncette.list_task_states`. With one, each partition is read
    from the first name that could match (stores list names in code-point order), so a search
    costs the matches, not the whole task. Tokens are opaque and belong to the same prefix.
    """
    if not prefix:
        return pyncette.list_task_states(task, limit, continuation_token)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    definition = pyncette.definition(task)
    store = pyncette.store
    if continuation_token is None:
        partition, after = 0, _just_before(prefix)
    else:
        partition, after = decode_token(continuation_token)
    states: list[TaskState] = []
    while partition < definition.partition_count:
        done = False
        while not done:
            page = store.list_instances(definition.name, partition, SCAN_PAGE, after)
            for record in page:
                name = record.key.instance
                after = name
                if name.startswith(prefix):
                    if name != STATIC_INSTANCE and not is_extra_instance(name):
                        states.append(TaskState.from_record(record))
                    if len(states) == limit:
                        return TaskStatePage(states, encode_token(partition, name))
                elif name > prefix:
                    done = True
                    break
            if len(page) < SCAN_PAGE:
                done = True
        partition, after = partition + 1, _just_before(prefix)
    return TaskStatePage(states, None)


def _extras_in(store: Store, task: str, partition: int) -> int:
    """How many extra occurrences (run now, backfill) one task partition holds: they are not
    instances. They share one name prefix, so this reads them alone (usually none)."""
    found, after = 0, _just_before(EXTRA_PREFIX)
    while page := store.list_instances(task, partition, SCAN_PAGE, after):
        extras = [r for r in page if is_extra_instance(r.key.instance)]
        found += len(extras)
        if len(extras) < len(page):
            break
        after = page[-1].key.instance
    return found


def _just_before(prefix: str) -> str | None:
    """A name sorting before every name that starts with ``prefix`` and after almost all others.

    ``list_instances(after=...)`` is exclusive; the last character is stepped back by one code
    point and followed by the highest one, so scanning starts right in front of the matches.
    """
    last = ord(prefix[-1])
    if last == 0:
        return prefix[:-1] or None
    previous = last - 1
    if 0xD800 <= previous <= 0xDFFF:  # surrogates cannot be stored
        previous = 0xD7FF
    return prefix[:-1] + chr(previous) + "\U0010ffff"


def backlog(
    pyncette: Pyncette, now: datetime, definitions: Sequence[TaskDefinition] | None = None
) -> list[Backlog]:
    """Due and running instances per enabled task, read page by page over every partition.

    This reads every stored instance once: cheap for thousands, a few seconds for millions.
    Quarantined records are neither due nor running (up to :data:`quarantine.COUNT_LIMIT` of
    them are left out).
    """
    store = pyncette.store
    result: list[Backlog] = []
    quarantined = {q.key for q in store.list_quarantined(None, quarantine.COUNT_LIMIT)}
    chosen = pyncette.definitions() if definitions is None else definitions
    for definition in sorted(chosen, key=lambda d: d.name):
        if not definition.enabled:
            continue
        due = running = 0
        oldest: datetime | None = None
        for partition in range(definition.partition_count):
            after: str | None = None
            while page := store.list_instances(definition.name, partition, SCAN_PAGE, after):
                after = page[-1].key.instance
                for record in page:
                    if record.key in quarantined:
                        continue
                    if record.is_locked(now):
                        running += 1
                    elif record.next_run <= now:
                        due += 1
                        if oldest is None or record.next_run < oldest:
                            oldest = record.next_run
                if len(page) < SCAN_PAGE:
                    break
        result.append(Backlog(definition.name, due, running, oldest))
    return result


def health(pyncette: Pyncette, now: datetime, *, with_backlog: bool = True) -> Health:
    """Which beats are alive, whether any is stale, what is unpolled, what is quarantined (a
    warning, not a problem: beat runs the rest), and the due backlog."""
    beats = sorted(registry.list_beats(pyncette.store), key=lambda b: b.owner)
    problems = registry.beat_problems(beats, now)
    warnings: list[str] = []
    alive = [beat for beat in beats if not beat.is_stale(now)]
    if alive:
        for definition in pyncette.definitions():
            if not definition.enabled:
                continue
            polled = {p for beat in alive for p in beat.partitions.get(definition.name, ())}
            missing = sorted(set(range(definition.partition_count)) - polled)
            if missing:
                where = "" if definition.partition_count == 1 else f" partitions {missing}"
                warnings.append(f"task {definition.name}{where} is polled by no live beat")
    quarantined = pyncette.store.list_quarantined(None, quarantine.COUNT_LIMIT + 1)
    more = len(quarantined) > quarantine.COUNT_LIMIT
    quarantined = quarantined[: quarantine.COUNT_LIMIT]
    if quarantined:
        warnings.append(quarantine.summary(quarantined, more))
    found = backlog(pyncette, now) if with_backlog else None
    return Health(now, beats, found, problems, warnings, quarantined, more)


def forget_stale_beats(pyncette: Pyncette, now: datetime) -> list[str]:
    """Remove the records of stale beats (killed without a clean shutdown); return their owners."""
    gone = [beat.owner for beat in registry.list_beats(pyncette.store) if beat.is_stale(now)]
    for owner in gone:
        registry.forget_beat(pyncette.store, owner)
    return gone
