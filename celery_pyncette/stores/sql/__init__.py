"""The SQL store: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy Core.

``_schema`` defines the tables of a namespace and the portable column types, ``_migrate`` creates
them and brings older tables up to date, ``_engine`` the connection pool (renewed after a fork)
and driver errors, ``_dialects`` the statements that differ per server (claims and upserts),
``_rows`` reads rows field by field (one undecodable row fails only itself), ``_quarantine`` the
quarantine marker, ``_leases`` lease extensions, ``_releases`` commits and unlocks, and
``_store`` the :class:`SQLStore` that puts them together.
"""

from __future__ import annotations

from celery_pyncette.stores.sql._store import SQLStore

__all__ = ["SQLStore"]
