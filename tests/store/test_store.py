"""The store on SQLite and on a throwaway PostgreSQL: schema, round trip, atomicity."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.app import Corral
from corral.config import Paths, Settings
from corral.inventory import ops
from corral.inventory.errors import Conflict
from corral.inventory.index import Inventory
from corral.store import schema
from corral.store.db import HEAD_REVISION, Store, StoreError, open_store
from corral.store.inventory import generation, load_inventory, save_inventory

INVENTORY_TABLES = {"settings", "networks", "profiles", "nodes", "interfaces"}
N001_MAC = "52:54:00:00:00:01"
OTHER_TABLES = {"leases", "discovered", "node_status", "events", "images", "switches"}


def build_cluster(inv: Inventory) -> None:
    ops.add_network(
        inv,
        {
            "name": "prov",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dns_servers": ["10.77.0.1", "1.1.1.1"],
            "dynamic_range": "10.77.0.200-10.77.0.250",
            "mtu": 9000,
        },
    )
    ops.add_network(inv, {"name": "ipmi", "cidr": "10.78.0.0/24"})
    ops.add_profile(
        inv,
        {
            "name": "compute",
            "image": "rocky9",
            "kernel_args": ["console=ttyS0", "quiet"],
            "networks": ["prov"],
            "power": {"driver": "ipmi", "username": "admin", "password": "s3cret"},
            "tags": {"rack": "a1"},
            "disk": {
                "device": "/dev/sda",
                "partitions": [{"label": "root", "mount": "/", "format": "xfs"}],
            },
        },
    )
    ops.add_nodes(inv, ["n001"], {"profiles": ["compute"]}, mac=N001_MAC)
    ops.add_nodes(inv, ["n002", "n003"], {"profiles": ["compute"], "tags": {"gpu": "no"}})


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the inventory tables, as sorted tuples (independent of the app)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return {
                t: sorted(
                    (
                        tuple(map(repr, r))
                        for r in conn.execute(sa.select(schema.metadata.tables[t]))
                    ),
                )
                for t in sorted(INVENTORY_TABLES)
            }
    finally:
        engine.dispose()


def test_migration_creates_schema(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.revision() == HEAD_REVISION
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert tables >= INVENTORY_TABLES | OTHER_TABLES
        store.migrate()  # a second open is a no-op
        assert store.revision() == HEAD_REVISION
    finally:
        store.close()


def test_migration_matches_schema_module(store_url: str) -> None:
    """The alembic revision and schema.py describe the same columns and unique keys."""
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            insp = sa.inspect(conn)
            for name, table in schema.metadata.tables.items():
                got = {c["name"] for c in insp.get_columns(name)}
                assert got == set(table.columns.keys()), name
            uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("interfaces")}
            assert {("mac",), ("network", "ip")} <= uniques
    finally:
        store.close()


def test_bad_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store("nonsense://x")
    with pytest.raises(StoreError, match="cannot open database"):
        open_store("postgresql://postgres@127.0.0.1:1/none")


def test_round_trip(app: Corral) -> None:
    app.change(build_cluster)
    expected = Inventory()
    build_cluster(expected)
    got = app.read()
    assert got.to_cluster() == expected.to_cluster()
    # the secret reaches the store (exports leave it out, the power driver needs it)
    password = got.profiles["compute"].power.password
    assert password is not None and password.get_secret_value() == "s3cret"
    assert str(got.nodes["n001"].interfaces[0].ip) == "10.77.0.2"
    assert [str(got.nodes[n].interfaces[0].ip) for n in ("n002", "n003")] == [
        "10.77.0.3",
        "10.77.0.4",
    ]


def test_round_trip_through_a_second_process_view(app: Corral, store_url: str) -> None:
    """Another Corral on the same URL (like a second server) sees the same inventory."""
    app.change(build_cluster)
    other = Corral(Settings(paths=app.settings.paths, database_url=store_url))
    try:
        assert other.read().to_cluster() == app.read().to_cluster()
    finally:
        other.store.close()


def test_updates_and_deletes_reach_the_store(app: Corral) -> None:
    app.change(build_cluster)
    app.change(lambda inv: ops.set_nodes(inv, ["n002"], {"image": "alma9"}))
    app.change(lambda inv: ops.delete_nodes(inv, ["n003"]))
    inv = app.read()
    assert inv.nodes["n002"].image == "alma9"
    assert "n003" not in inv.nodes
    with app.store.transaction() as conn:
        ifaces = conn.execute(sa.select(schema.interfaces.c.node)).scalars().all()
    assert sorted(ifaces) == ["n001", "n002"]


def test_failing_command_changes_nothing(app: Corral, store_url: str) -> None:
    app.change(build_cluster)
    before = snapshot(store_url)

    def half_done(inv: Inventory) -> None:
        ops.add_nodes(inv, ["n010"], {"profiles": ["compute"]})
        ops.set_profile(inv, "compute", {"image": "other"})
        raise RuntimeError("crash in the middle of a command")

    with pytest.raises(RuntimeError):
        app.change(half_done)
    with pytest.raises(Conflict):
        app.change(
            lambda inv: ops.add_nodes(
                inv, ["n011"], {"profiles": ["compute"]}, mac="52:54:00:00:00:01"
            )
        )
    assert snapshot(store_url) == before


def test_failure_inside_the_database_rolls_back_earlier_writes(app: Corral, store_url: str) -> None:
    """Bypass validation: the unique MAC index rejects the write after nodes rows went in."""
    app.change(build_cluster)
    before = snapshot(store_url)
    with pytest.raises(sa.exc.IntegrityError), app.store.transaction() as conn:
        old = load_inventory(conn)
        new = Inventory(old.settings, dict(old.networks), dict(old.profiles), dict(old.nodes))
        n001 = new.nodes["n001"]
        new.nodes["n099"] = n001.model_copy(update={"name": "n099"})  # same MAC and IP
        new.nodes["n002"] = new.nodes["n002"].model_copy(update={"image": "changed"})
        save_inventory(conn, old, new)
    assert snapshot(store_url) == before


@pytest.mark.parametrize("column", ["mac", "ip"])
def test_database_enforces_unique_mac_and_ip(app: Corral, column: str) -> None:
    app.change(build_cluster)
    row = {"node": "n002", "network": "prov", "mac": None, "ip": None}
    row[column] = "52:54:00:00:00:01" if column == "mac" else "10.77.0.2"
    with pytest.raises(sa.exc.IntegrityError), app.store.transaction() as conn:
        conn.execute(sa.delete(schema.interfaces).where(schema.interfaces.c.node == "n002"))
        conn.execute(sa.insert(schema.interfaces), [row])


def test_concurrent_writers_lose_no_updates(app: Corral, store_url: str) -> None:
    """10 writers, each with its own connection pool, read-modify-write at once."""
    app.change(build_cluster)
    writers = 10
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        corral = Corral(Settings(paths=app.settings.paths, database_url=store_url))
        try:
            barrier.wait(timeout=30)

            def action(inv: Inventory) -> None:
                # allocate the next free address and add a tag on a shared node: a lost
                # update shows up as a missing tag, a duplicate address or a failure
                ops.add_nodes(inv, [f"w{i:02d}"], {"profiles": ["compute"]})
                tags = {**inv.nodes["n001"].tags, f"w{i}": "x"}
                ops.set_nodes(inv, ["n001"], {"tags": tags})
                time.sleep(0.01)  # widen the read-modify-write window

            corral.change(action)
        except BaseException as exc:
            errors.append(exc)
        finally:
            corral.store.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    inv = app.read()
    added = [inv.nodes[f"w{i:02d}"] for i in range(writers)]
    ips = {n.interfaces[0].ip for n in added} | {
        inv.nodes[n].interfaces[0].ip for n in ("n001", "n002", "n003")
    }
    assert len(ips) == writers + 3
    assert {f"w{i}" for i in range(writers)} <= set(inv.nodes["n001"].tags)


def test_sqlite_file_lives_under_corral_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"CORRAL_HOME": str(tmp_path / "h")})
    corral = Corral(settings)
    try:
        corral.change(lambda inv: ops.add_network(inv, {"name": "p", "cidr": "10.1.0.0/16"}))
    finally:
        corral.store.close()
    assert (tmp_path / "h" / "corral.db").is_file()
    assert settings.paths == Paths(tmp_path / "h")
    assert (tmp_path / "h").stat().st_mode & 0o777 == 0o700


def test_the_generation_moves_with_every_change_and_only_then(app: Corral) -> None:
    def current() -> int:
        with app.store.transaction() as conn:
            return generation(conn)

    start = current()
    app.change(build_cluster)
    after_build = current()
    assert after_build > start
    app.change(lambda inv: None)  # no difference written
    assert current() == after_build
    app.change(lambda inv: ops.delete_nodes(inv, ["n003"]))
    assert current() > after_build


def test_a_reader_does_not_wait_for_a_writer_holding_its_lock(app: Corral) -> None:
    """`Store.reading` takes no write lock (SQLite: deferred BEGIN; PostgreSQL: no lock)."""
    app.change(build_cluster)
    holding, release, released = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with app.store.transaction() as conn:
            conn.execute(sa.delete(schema.leases))  # holds the write lock until commit
            holding.set()
            release.wait(timeout=60)
        released.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        with app.store.reading() as conn:
            nodes = conn.execute(sa.select(sa.func.count()).select_from(schema.nodes)).scalar()
        assert not released.is_set(), "the read waited for the writer to finish"
        assert nodes == 3
    finally:
        release.set()
        thread.join(timeout=60)


def test_a_write_inside_a_reading_transaction_fails_and_changes_nothing(app: Corral) -> None:
    app.change(build_cluster)
    with pytest.raises(sa.exc.DBAPIError), app.store.reading() as conn:
        conn.execute(sa.delete(schema.interfaces))
    assert set(app.read().nodes) == {"n001", "n002", "n003"}
    # the pooled connection is a writer again afterwards
    app.change(lambda inv: ops.add_nodes(inv, ["n004"], {"profiles": ["compute"]}))
    assert "n004" in app.read().nodes


def test_a_reading_transaction_sees_one_snapshot(app: Corral) -> None:
    """Queries of one read see the database as of its first query, not a later commit."""
    app.change(build_cluster)
    count = sa.select(sa.func.count()).select_from(schema.nodes)
    with app.store.reading() as conn:
        before = conn.execute(count).scalar()
        app.change(lambda inv: ops.add_nodes(inv, ["n004"], {"profiles": ["compute"]}))
        during = conn.execute(count).scalar()
    assert (before, during) == (3, 3)
    with app.store.reading() as conn:
        assert conn.execute(count).scalar() == 4
