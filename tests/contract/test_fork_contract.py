"""``Store.after_fork`` on every store: a forked child drops what it inherited and works on its own
connections, and the parent's store keeps working on its own afterwards."""

from __future__ import annotations

import os
import signal
import time
import traceback
from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store
from celery_pyncette.stores.memory import MemoryStore

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
CHILD_TIMEOUT = 30.0


def record(name: str) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", 0, name), T0, {"cron": "* * * * *"}, {"n": name})


def _in_child(store: Store) -> None:
    """What the child does with the inherited store; raises when something is wrong."""
    store.after_fork()
    store.upsert(record("child"), T0)
    got = store.get(record("child").key)
    assert got is not None
    assert got.args == {"n": "child"}
    assert store.get(record("parent").key) is not None
    claimed = store.claim_due("t", 0, T0, 10, LEASE, "child")
    assert sorted(r.key.instance for r in claimed) == ["child", "parent"], claimed
    for got in claimed:
        assert got.lease is not None
        store.commit(got.key, got.lease, T0 + timedelta(hours=1), T0)


def _wait(pid: int) -> int:
    """The child's exit code; kills it and fails when it does not finish in time."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish within {CHILD_TIMEOUT:.0f} s")
        time.sleep(0.02)
    return os.waitstatus_to_exitcode(waited[1])


def test_a_forked_child_works_after_after_fork_and_the_parent_keeps_working(store: Store) -> None:
    store.upsert(record("parent"), T0)
    assert store.get(record("parent").key) is not None  # the parent's connections are open
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status and the pipe
        code = 1
        try:
            os.close(read)
            _in_child(store)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc().encode()[-4000:])
        finally:
            os._exit(code)
    os.close(write)
    try:
        code = _wait(pid)
        report = os.read(read, 4000).decode(errors="replace")
    finally:
        os.close(read)

    assert code == 0, report
    # The parent's store, on the connections it had before the fork: round trips still work.
    assert store.get(record("parent").key) is not None
    store.upsert(record("after"), T0)
    claimed = sorted(r.key.instance for r in store.claim_due("t", 0, T0, 10, LEASE, "parent"))
    if isinstance(store, MemoryStore):  # nothing is shared between processes
        assert claimed == ["after", "parent"]
    else:  # the child committed both records of its claim: they are due an hour later
        assert claimed == ["after"]
        assert store.get(record("child").key) is not None
