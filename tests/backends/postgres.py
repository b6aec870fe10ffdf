"""The SQL store on the local PostgreSQL (``PYNCETTE_TEST_POSTGRES_URL``, default database test)."""

from __future__ import annotations

import os

from tests.backends._sql_server import SQLServer

NAME = "postgresql"
URL = os.environ.get("PYNCETTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SERVER = SQLServer("PostgreSQL", URL, 5432, "postgresql+psycopg", '"')

require = SERVER.require
drop_tables = SERVER.drop_tables
make_store = SERVER.make_store
make_second_client = SERVER.make_second_client
