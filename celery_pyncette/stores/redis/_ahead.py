"""The batches of one task partition, each claim sent before the previous batch is handed over.

Beat publishes a batch while Redis runs the claim script of the next one, and reads that script's
reply only when it asks for the next batch. Claimed one after the other, beat would sit idle for
every claim: a round trip plus most of a millisecond of server time per hundred instances.

The claims run on a connection taken from the client's pool for the whole stream, so replies
cannot be read by anyone else. Candidates come from one ``ZRANGEBYSCORE`` for several batches;
the claim script checks each again, so a candidate another beat took meanwhile is only skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from redis.exceptions import NoScriptError

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import (
    ClaimedBatch,
    ClaimedRecord,
    InstanceKey,
    LeaseRef,
    Quarantined,
)
from celery_pyncette.stores.redis._layout import (
    ClaimReply,
    claim_script_call,
    claimed_records,
    to_micros,
)
from celery_pyncette.stores.redis._scripts import SCRIPTS

log = logging.getLogger("celery_pyncette.stores.redis")

#: Candidates read beyond a batch for its claim script (others may have taken some), as
#: ``RedisStore.claim_due`` does.
SPARE = 16
#: Candidates one ``ZRANGEBYSCORE`` reads, in claims' worth.
CLAIMS_PER_READ = 4


@dataclass(frozen=True, slots=True)
class _Sent:
    """A claim whose reply is still to be read."""

    now: datetime
    candidates: list[bytes]
    arguments: list[Any]  # of EVALSHA after the sha, to send it again after NOSCRIPT


class PartitionClaims:
    """Claims the due instances of one task partition batch after batch (see the module doc).

    ``errors`` raises Redis failures as :class:`StoreError`; ``claim`` completes a batch left
    short because other claimers took candidates; ``settle`` turns a claim script's reply into
    records and quarantined instances (quarantining the leased ones Python cannot decode);
    ``unlock`` releases a batch claimed ahead that the caller no longer wants. Quarantined
    instances count against a batch's limit, as in ``claim``.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: bytes,
        key: Callable[[str], InstanceKey],
        clock: Callable[[], datetime],
        limit: int,
        lease_duration: timedelta,
        owner: str,
        errors: Callable[[str], AbstractContextManager[None]],
        claim: Callable[[datetime, int], ClaimedBatch],
        settle: Callable[[datetime, ClaimReply], tuple[list[ClaimedRecord], list[Quarantined]]],
        unlock: Callable[[Sequence[LeaseRef]], object],
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ready = prefix + b":ready"
        self._key = key
        self._clock = clock
        self._limit = limit
        self._lease_duration = lease_duration
        self._owner = owner
        self._errors = errors
        self._claim = claim
        self._settle = settle
        self._unlock = unlock
        self._candidates: list[bytes] = []
        self._connection: Any = None
        self._sent: _Sent | None = None
        #: False while a reply may be waiting unread on the connection
        self._clean = True

    def batches(self, max_batches: int) -> Generator[ClaimedBatch, None, None]:
        """Up to ``max_batches`` batches; the stream ends after a short one. Closing it early
        unlocks the batch claimed ahead."""
        with self._errors("claim"):
            self._connection = self._client.connection_pool.get_connection()
        try:
            with self._errors("claim"):
                self._send()
            for count in range(1, max_batches + 1):
                with self._errors("claim"):
                    batch = self._receive()
                    full = len(batch.records) + len(batch.quarantined) == self._limit
                    if full and count < max_batches:
                        self._send()
                yield batch
                if self._sent is None:
                    return
        finally:
            self._finish()

    def _send(self) -> None:
        now = self._clock()
        now_us = to_micros(now)
        wanted = self._limit + SPARE
        if len(self._candidates) < wanted:
            found: list[bytes | str] = self._client.zrangebyscore(  # type: ignore[assignment]
                self._ready, "-inf", now_us, start=0, num=CLAIMS_PER_READ * wanted
            )
            self._candidates = [c.encode("utf-8") if isinstance(c, str) else c for c in found]
        candidates = self._candidates[:wanted]
        arguments: list[Any] = []
        if candidates:
            expiry = str(to_micros(now + self._lease_duration))
            keys, args = claim_script_call(
                self._prefix, candidates, now_us, expiry, self._owner, self._limit
            )
            arguments = [len(keys), *keys, *args]
            self._clean = False
            self._connection.send_command("EVALSHA", SCRIPTS["claim"].sha, *arguments)
        self._sent = _Sent(now, candidates, arguments)

    def _receive(self) -> ClaimedBatch:
        sent, self._sent = self._sent, None
        assert sent is not None
        reply = self._read(sent)
        records, quarantined = self._settle(sent.now, reply)
        if reply.taken == self._limit:
            # the script stops at its last take: the candidates after it are still to be tried
            self._candidates = self._candidates[reply.last :]
            return ClaimedBatch(sent.now, records, quarantined)
        self._candidates = self._candidates[len(sent.candidates) :]
        if reply.taken < len(sent.candidates):
            # Other claimers took some candidates: complete the batch as claim would.
            more = self._claim(sent.now, self._limit - reply.taken)
            records += more.records
            quarantined += more.quarantined
            self._candidates = []
        return ClaimedBatch(sent.now, records, quarantined)

    def _read(self, sent: _Sent) -> ClaimReply:
        """The reply of a claim sent ahead: what it took."""
        if not sent.candidates:
            return ClaimReply()
        try:
            reply = self._connection.read_response()
        except NoScriptError:
            # After SCRIPT FLUSH, a restart or a failover: load it and claim again.
            self._clean = True
            self._client.script_load(SCRIPTS["claim"].text)
            self._clean = False
            self._connection.send_command("EVALSHA", SCRIPTS["claim"].sha, *sent.arguments)
            reply = self._connection.read_response()
        self._clean = True
        return claimed_records(reply, sent.candidates)

    def _finish(self) -> None:
        """Unlock a batch claimed ahead; give the connection back, closed when a reply may be
        left unread on it."""
        connection = self._connection
        if connection is None:
            return
        try:
            if self._sent is not None:
                # read only: completing a batch nobody wants would claim more just to unlock it
                with self._errors("read a claim made ahead"):
                    sent = self._sent
                    records, quarantined = self._settle(sent.now, self._read(sent))
                self._unlock([record.ref for record in records])
                for entry in quarantined:
                    log.warning("quarantined %s: %s", entry.key, entry.reason)
        except StoreError as exc:
            log.warning("claims made ahead were not unlocked; they wait for their lease: %s", exc)
        finally:
            self._connection = None
            if not self._clean:
                connection.disconnect()
            self._client.connection_pool.release(connection)
