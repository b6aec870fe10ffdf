"""The SQL store on the local PostgreSQL (``PYNCETTE_TEST_POSTGRES_URL``, default database test)."""

from __future__ import annotations

import os

from celery_pyncette.stores.base import InstanceKey, Store
from tests.backends._sql_server import SQLServer

NAME = "postgresql"
URL = os.environ.get("PYNCETTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SERVER = SQLServer("PostgreSQL", URL, 5432, "postgresql+psycopg", '"')

require = SERVER.require
drop_tables = SERVER.drop_tables
make_store = SERVER.make_store
make_second_client = SERVER.make_second_client
write_legacy_strike = SERVER.write_legacy_strike

#: Field -> garbage the claim quarantines (``infinity``: the one time psycopg cannot return).
CORRUPTIONS = {
    "spec": "not json {",
    "args": "[1, 2]",
    "next_run": "infinity",
}
#: Field -> garbage that get/list_instances refuse and a claim overwrites (none on PostgreSQL:
#: an infinite lock expiry reads as no lock).
HEALED_BY_CLAIM: dict[str, str] = {}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"last_run_at": "infinity"}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """Write the garbage of ``field`` into the row (a raw UPDATE)."""
    SERVER.corrupt(store, key, field, {**CORRUPTIONS, **HEALED_BY_CLAIM, **TOLERATED}[field])
