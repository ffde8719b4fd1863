"""Shared fixtures: scratch CORRAL_HOME, network topologies, required tools.

Under `make test` (CORRAL_TEST_REQUIRE_ALL=1) a missing tool or privilege is a
failure, not a skip: CI must never pass by silently skipping the real peers.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corral.app import Corral
from corral.config import Paths, Settings
from corral.lab.netns import Topology, can_create_namespaces
from tests.helpers.xdist_scopes import minutes_of, scope_of

REQUIRE_ALL = os.environ.get("CORRAL_TEST_REQUIRE_ALL") == "1"


# heaviest first: VM tests, then other slow ones, then the rest (see the hook below)
WEIGHT_OF_MARK = (("vm", 0), ("slow", 1))


def _weight(item: pytest.Item) -> int:
    return next((w for mark, w in WEIGHT_OF_MARK if item.get_closest_marker(mark)), 2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Units that hold VM tests run first (`make test` runs two pytest-xdist workers), the
    longest of them first, so that the longest work starts first and the two workers finish
    together; within a unit the collection order stays. The units and their lengths are in
    `tests.helpers.xdist_scopes`."""
    rank: dict[str, int] = {}
    for item in items:
        scope = scope_of(item.nodeid)
        rank[scope] = min(rank.get(scope, 2), _weight(item))
    order = {id(item): i for i, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[int, float, int]:
        scope = scope_of(item.nodeid)
        return rank[scope], -minutes_of(scope), order[id(item)]

    items.sort(key=key)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Give each worker whole units of `scope_of` (a module, a shared lab, or one VM test)."""
    from xdist.scheduler import LoadScopeScheduling

    class LabScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return LabScopeScheduling(config, log)


def need(condition: bool, why: str) -> None:
    """Skip (or, under `make test`, fail) the calling test unless `condition`."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required for the full suite: {why}")
    pytest.skip(why)


def need_tool(*names: str) -> None:
    for name in names:
        need(shutil.which(name) is not None, f"{name} is not installed")


@pytest.fixture
def corral_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CORRAL_HOME for one test; the database URL is left to the default."""
    home = tmp_path / "corral"
    monkeypatch.setenv("CORRAL_HOME", str(home))
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    return home


@pytest.fixture
def topo() -> Iterator[Topology]:
    """A network topology torn down after the test, pass or fail."""
    need(can_create_namespaces(), "network namespaces need root and iproute2")
    t = Topology("ct")
    try:
        yield t
    finally:
        t.close()


# --- a throwaway PostgreSQL server for the store tests -------------------------------------


def _pg_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries (/usr/lib/postgresql/<v>/bin)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    found = [p for p in found if (p / "initdb").exists()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A PostgreSQL server in its own data dir, listening on 127.0.0.1:`port` only."""

    bindir: Path
    root: Path
    port: int = 0
    _created: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # root cannot run postgres: drop to the postgres user (or run as ourselves if not root)
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv], cwd=self.root, capture_output=True, text=True, check=check, timeout=60
        )

    def start(self) -> None:
        self.root.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        for _attempt in range(5):  # the free port may be taken between probe and bind
            self.port = _free_port()
            opts = (
                f"-h 127.0.0.1 -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            started = self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                "-o", opts, "-w", "-t", "30", "start", check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return
        log = (self.root / "log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop",
                check=False,
            )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._created += 1
        name = f"corral_test_{self._created}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, stopped and removed afterwards, pass or fail."""
    bindir = _pg_bindir()
    need(bindir is not None, "PostgreSQL server (apt-get install postgresql)")
    assert bindir is not None
    need(os.geteuid() != 0 or shutil.which("runuser") is not None, "runuser (util-linux)")
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix="corral-pg-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the throwaway server (one per test)."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: SQLite in tmp_path, then the throwaway PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'corral.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[Corral]:
    """The application on `store_url`, its CORRAL_HOME in tmp_path."""
    corral = Corral(Settings(paths=Paths(tmp_path / "home"), database_url=store_url))
    try:
        yield corral
    finally:
        if "store" in corral.__dict__:  # only if the test opened it
            corral.store.close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Collect the tests' garbage before other plugins' session-end hooks run.

    schemathesis' hook imports its report writers then, through pytest's assertion
    rewriter; on CPython 3.11.2 (Debian 12) a finalizer that runs inside that compile
    (a test's leftover event loop or socket) fails it with "SystemError: AST constructor
    recursion depth mismatch" (seen after tests/images/test_fetchclient.py), and a run
    whose tests all passed exits with an error.
    """
    gc.collect()
