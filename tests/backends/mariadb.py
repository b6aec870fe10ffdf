"""The SQL store on the local MariaDB or MySQL (``PYNCETTE_TEST_MYSQL_URL``, database test)."""

from __future__ import annotations

import os

from celery_pyncette.stores.base import InstanceKey, Store
from tests.backends._sql_server import SQLServer

NAME = "mariadb"
URL = os.environ.get("PYNCETTE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SERVER = SQLServer("MariaDB", URL, 3306, "mysql+pymysql", "`")

require = SERVER.require
drop_tables = SERVER.drop_tables
make_store = SERVER.make_store
make_second_client = SERVER.make_second_client
write_legacy_strike = SERVER.write_legacy_strike

#: Field -> garbage the claim quarantines (the zero date: MariaDB stores it unless the sql_mode
#: has NO_ZERO_DATE, and PyMySQL returns it as text).
CORRUPTIONS = {
    "spec": "not json {",
    "args": '"a string"',
    "next_run": "0000-00-00 00:00:00",
}
#: Field -> garbage that get/list_instances refuse and a claim overwrites.
HEALED_BY_CLAIM = {"locked_until": "0000-00-00 00:00:00"}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"last_run_at": "0000-00-00 00:00:00"}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """Write the garbage of ``field`` into the row (a raw UPDATE)."""
    SERVER.corrupt(store, key, field, {**CORRUPTIONS, **HEALED_BY_CLAIM, **TOLERATED}[field])
