"""Opening the database: SQLite under CORRAL_HOME by default, PostgreSQL by URL.

Every command runs in one transaction (`Store.transaction`), so a failing
command changes nothing. SQLite runs in WAL mode with `BEGIN IMMEDIATE`, so
`corral serve` and CLI commands can write concurrently without lock upgrades
failing halfway. The schema is brought to the newest alembic revision on open;
the check is one query, alembic itself is loaded only when a migration is due.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

HEAD_REVISION = "0001"
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(RuntimeError):
    """The database cannot be opened or migrated."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# Any fixed number: the key of the advisory lock that serialises corral's transactions.
PG_LOCK_KEY = 0x636F7272  # "corr"


def _postgres_begin(conn: Connection) -> None:
    # Commands read the whole inventory, change it and write the difference. Under
    # READ COMMITTED two of them at once would both hand out the same address, or
    # one would fail on the other's rows; the lock serialises them like SQLite's
    # BEGIN IMMEDIATE does. It is released at commit or rollback.
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        sa.event.listen(engine, "begin", _postgres_begin)
    return engine


class Store:
    """The database behind one corral installation."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use database URL {url!r}: {exc}") from exc

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Bring the schema to HEAD_REVISION (a no-op when it is there)."""
        try:
            if self.revision() == HEAD_REVISION:
                return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open database {self.safe_url}: {exc.orig}") from exc

    @property
    def safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str) -> Store:
    store = Store(url)
    store.migrate()
    return store
