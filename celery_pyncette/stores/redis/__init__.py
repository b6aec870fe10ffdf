"""``redis://``, ``rediss://``, ``redis+sentinel://`` and ``redis+cluster://``: a store on Redis
(standalone, or the primary Redis Sentinel names) or on Redis Cluster.

Key layout (``ns``: the namespace; ``T``: the task name's UTF-8 in hex; ``P``: the partition)::

    ns:{T.P}:ready         sorted set  instance name -> ready_at (epoch microseconds)
    ns:{T.P}:names         sorted set  instance name -> 0 (listing by name with ZRANGEBYLEX)
    ns:{T.P}:i:<instance>  hash        n next run, u locked until, l lease, o owner,
                                       s spec JSON, a args JSON, r last run, t last status
    ns:{T.P}:quarantine    hash        instance name -> JSON [since, reason] (see _quarantine.py)
    ns:{quarantine.N}:partitions  set  JSON [task, partition] with quarantined instances
    ns:{strikes.N}:set     set         strike ids   (N: the namespace's UTF-8 bytes in hex)
    ns:{strikes.N}:marker  string      integer moved by every strike change

Every key of one task partition carries the same hash tag, so a partition lives in one cluster
slot and partitions spread over the shards. Every change that touches more than one key is one Lua
script (``stores/redis/*.lua``) that declares all its keys; a claim first reads candidates from the
ready index (``O(log N + batch)``) and then leases those still claimable in one script.
"""

from __future__ import annotations

from celery_pyncette.stores.redis._layout import (
    from_micros,
    instance_key,
    partition_prefix,
    to_micros,
)
from celery_pyncette.stores.redis._store import RedisStore

__all__ = ["RedisStore", "from_micros", "instance_key", "partition_prefix", "to_micros"]
