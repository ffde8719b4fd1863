"""Opening the database: SQLite under CORRAL_HOME by default, PostgreSQL by URL.

Every command runs in one transaction (`Store.transaction`), so a failing
command changes nothing. SQLite runs in WAL mode with `BEGIN IMMEDIATE`, so
`corral serve` and CLI commands can write concurrently without lock upgrades
failing halfway. Code that only reads (the DHCP and DNS snapshots, metrics
polls, listings) uses `Store.reading` instead: a consistent snapshot that
takes no write lock, so a reader never queues behind a writer (nor a writer
behind it). The schema is brought to the newest alembic revision on open;
the check is one query, alembic itself is loaded only when a migration is due.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from corral.config import Paths
from corral.store.errors import StoreError
from corral.store.files import create_private, make_private, sqlite_files
from corral.store.migrations import HEAD_REVISION
from corral.store.secretbox import SecretBox

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


READ_ONLY = "corral_read_only"  # execution option set by `Store.reading`


def _reading(conn: Connection) -> bool:
    return bool(conn.get_execution_options().get(READ_ONLY))


QUERY_ONLY = "corral.query_only"  # Connection.info (kept with the pooled connection)


def _sqlite_begin(conn: Connection) -> None:
    # Deferred for readers: in WAL mode a read snapshot needs no lock a writer holds.
    # query_only makes a write in a reader fail at once; switched only when it changes.
    reading = _reading(conn)
    if conn.info.get(QUERY_ONLY, False) != reading:
        conn.exec_driver_sql(f"PRAGMA query_only={int(reading)}")
        conn.info[QUERY_ONLY] = reading
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


# Any fixed number: the key of the advisory lock that serialises corral's transactions.
PG_LOCK_KEY = 0x636F7272  # "corr"


def _postgres_begin(conn: Connection) -> None:
    if _reading(conn):  # one snapshot for every query of the transaction, and no lock
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return
    # Commands read the whole inventory, change it and write the difference. Under
    # READ COMMITTED two of them at once would both hand out the same address, or
    # one would fail on the other's rows; the lock serialises them like SQLite's
    # BEGIN IMMEDIATE does. It is released at commit or rollback.
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            # SQLite makes its -wal and -shm files with the database's mode: 0600 first
            create_private(Path(path))
            for file in sqlite_files(Path(path)):
                make_private(file)
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


SECRETS = "corral.secrets"  # Connection.info key: the SecretBox of the connection's store


def secrets_of(conn: Connection) -> SecretBox | None:
    """The box that seals secrets written through `conn` (None: left as they are)."""
    box = conn.info.get(SECRETS)
    return box if isinstance(box, SecretBox) else None


class Store:
    """The database behind one corral installation; `secrets` seals the secrets in it."""

    def __init__(self, url: str, secrets: SecretBox | None = None) -> None:
        self.url = url
        self.secrets = secrets
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
                cfg.attributes["secrets"] = self.secrets
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
            conn.info[SECRETS] = self.secrets
            yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only unit of work: one consistent snapshot, no write lock taken.

        For paths that run often and change nothing (DHCP/DNS snapshots, metrics,
        listings). A write inside fails on both backends (SQLite's query_only,
        PostgreSQL's READ ONLY): use `transaction` for anything that writes.
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            conn.info[SECRETS] = self.secrets
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()


class Home(Protocol):
    """What the middle layers (images, discovery) need of an installation: its
    database and its paths under CORRAL_HOME. `corral.app.Corral` is one; so is
    any object with these two attributes, so those layers never import the app."""

    @property
    def store(self) -> Store: ...

    @property
    def paths(self) -> Paths: ...


def open_store(url: str, secrets: SecretBox | None = None) -> Store:
    store = Store(url, secrets)
    store.migrate()
    return store


__all__ = [
    "HEAD_REVISION",
    "Home",
    "Store",
    "StoreError",
    "make_engine",
    "open_store",
    "secrets_of",
]
