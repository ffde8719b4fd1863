"""`corral node list` on a local SQLite store is read with the standard library
(`corral.store.nodelist`); it must print exactly what the full path (SQLAlchemy,
the models, `Actions.nodes`) prints on the same database.

The full path is reached honestly: a URL naming SQLite's driver
(`sqlite+pysqlite:///FILE`) is the same database, but one the plain reader
declines, so the command goes through `Actions.nodes`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.inventory.errors import NotFound
from corral.store.nodelist import read_node_list, sqlite_file
from corral.store.status import record_state

from .conftest import CORRAL, run_cli_listing_modules

NODES = 100


def build_home(home: Path) -> Corral:
    """100 nodes in every shape the list shows: two networks, stacked profiles
    (image, boot, disk, power with a password), node overrides, MACs or none,
    a node with no profile, states from `new` to `failed`."""
    app = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))
    act = LocalActions(app, actor="test")
    act.add_network({"name": "prov", "cidr": "10.80.0.0/22", "gateway": "10.80.0.1"})
    act.add_network({"name": "ipmi", "cidr": "10.81.0.0/22"})
    act.add_profile({"name": "base", "image": "rocky", "networks": ["prov"], "tags": {"a": "1"}})
    disk = {"device": "/dev/vda", "partitions": [{"label": "root", "mount": "/"}]}
    act.add_profile({"name": "disk", "boot": "stateful", "disk": disk, "image": "debian"})
    power = {"driver": "ipmi", "address": "10.81.0.9", "username": "admin", "password": "s3cret"}
    act.add_profile({"name": "bmc", "networks": ["ipmi"], "power": power})
    act.add_nodes([f"c{i:03d}" for i in range(1, 41)], {"profiles": ["base"]})
    act.add_nodes([f"s{i:03d}" for i in range(1, 31)], {"profiles": ["base", "disk", "bmc"]})
    act.add_nodes([f"g{i:03d}" for i in range(1, 29)], {"profiles": ["bmc", "base"]})
    act.add_nodes(["lone"], {"networks": ["prov"]})
    act.add_nodes(["pi"], {"profiles": ["base"], "rpi_serial": "abcd1234"}, mac="dc:a6:32:00:00:01")
    for i in range(1, 11):
        act.set_nodes([f"c{i:03d}"], {}, mac=f"52:54:00:00:00:{i:02x}")
    act.set_nodes(["c011", "c012"], {"image": "alma", "boot": "service"})
    act.set_nodes(["s001"], {"boot": "stateless", "power": {"password": "other"}})
    act.set_nodes(["g001"], {"kernel_args": ["quiet"], "tags": {"rack": "r1"}})
    with app.store.transaction() as conn:
        for i, state in enumerate(("pxe", "downloading", "unpacking", "booted", "failed")):
            record_state(conn, f"c{i + 1:03d}", state, 1000.0 + i, force=True)
    return app


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("nodelist") / "home"
    build_home(home).store.close()
    return home


def run(home: Path, args: list[str], full: bool = False) -> tuple[str, list[str]]:
    """`corral ARGS` in a fresh interpreter on `home`: stdout, and the heavy modules it loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(COLUMNS="200", CORRAL_HOME=str(home))
    if full:
        env["CORRAL_DATABASE_URL"] = f"sqlite+pysqlite:///{home / 'corral.db'}"
    return run_cli_listing_modules(args, env)


@pytest.mark.parametrize(
    "args",
    [
        ["node", "list"],
        ["node", "list", "-o", "json"],
        ["node", "list", "-o", "yaml"],
        ["node", "list", "pi,s[001-003],lone,c001"],
        ["node", "list", "g[001-002],s001", "-o", "json"],
    ],
)
def test_the_plain_reader_prints_what_the_full_path_prints(built: Path, args: list[str]) -> None:
    fast, fast_heavy = run(built, args)
    full, full_heavy = run(built, args, full=True)
    assert fast == full
    assert fast_heavy == [] and "sqlalchemy" in full_heavy  # each took the path it claims


def test_the_plain_reader_gives_the_api_data_masked_and_the_tables_settings(built: Path) -> None:
    app = Corral(Settings.from_env({"CORRAL_HOME": str(built)}))
    try:
        full = LocalActions(app).nodes()
        full_effective = LocalActions(app).nodes(["s001", "g001", "c011"], effective=True)
    finally:
        app.store.close()
    url = f"sqlite:///{built / 'corral.db'}"
    plain = read_node_list(url)
    assert plain == full and len(plain) == NODES
    assert "s3cret" not in json.dumps(plain) and "other" not in json.dumps(plain)
    assert plain[0]["name"] == "c001" and "***" in json.dumps(plain)
    effective = read_node_list(url, ["s001", "g001", "c011"], effective=True)
    assert effective is not None
    for mine, theirs in zip(effective, full_effective, strict=True):
        shown = {k: v for k, v in theirs["effective"].items() if k in ("image", "boot", "disk")}
        assert mine["effective"] == shown
    assert [n["effective"].get("boot") for n in effective] == ["stateless", None, "service"]


def test_a_missing_name_is_the_same_error_on_both_paths(built: Path) -> None:
    url = f"sqlite:///{built / 'corral.db'}"
    with pytest.raises(NotFound) as plain:
        read_node_list(url, ["c001", "nope"])
    app = Corral(Settings.from_env({"CORRAL_HOME": str(built)}))
    try:
        with pytest.raises(NotFound) as full:
            LocalActions(app).nodes(["c001", "nope"])
    finally:
        app.store.close()
    assert str(plain.value) == str(full.value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    done = subprocess.run(
        [str(CORRAL), "node", "list", "nope"],
        env={**env, "CORRAL_HOME": str(built)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and str(full.value) in done.stderr


def test_the_plain_reader_declines_what_it_cannot_answer_exactly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert read_node_list(f"sqlite:///{home / 'corral.db'}") is None  # no database yet
    build_home(home).store.close()
    db = home / "corral.db"
    assert read_node_list(f"sqlite:///{db}") is not None
    for other in (f"sqlite+pysqlite:///{db}", f"sqlite:///{db}?mode=ro", "postgresql://x/y"):
        assert sqlite_file(other) is None and read_node_list(other) is None
    with sqlite3.connect(db) as conn:  # a database an older corral left, not yet migrated
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    assert read_node_list(f"sqlite:///{db}") is None  # the full path migrates it first
