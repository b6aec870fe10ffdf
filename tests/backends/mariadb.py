"""The SQL store on the local MariaDB or MySQL (``PYNCETTE_TEST_MYSQL_URL``, database test)."""

from __future__ import annotations

import os

from tests.backends._sql_server import SQLServer

NAME = "mariadb"
URL = os.environ.get("PYNCETTE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SERVER = SQLServer("MariaDB", URL, 3306, "mysql+pymysql", "`")

require = SERVER.require
drop_tables = SERVER.drop_tables
make_store = SERVER.make_store
make_second_client = SERVER.make_second_client
