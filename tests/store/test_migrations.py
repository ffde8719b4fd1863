"""Revision arch_layers: node specs lose switch/switch_port; the switch map keeps the port."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from corral.discovery.switches import load_switches
from corral.store import schema
from corral.store.db import MIGRATIONS, Store
from corral.store.inventory import load_inventory


def store_at_0001(url: str) -> Store:
    store = Store(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert store.revision() == "0001"
    return store


def test_switch_fields_move_into_the_switch_map_and_leave_the_node(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at_0001(store_url)
    try:
        with store.transaction() as conn:
            conn.execute(
                sa.insert(schema.switches),
                [
                    {"name": "sw1", "spec": {"address": "10.0.0.2", "ports": {"2": "n2"}}},
                ],
            )
            conn.execute(
                sa.insert(schema.nodes),
                [
                    {"name": "n1", "spec": {"name": "n1", "switch": "sw1", "switch_port": "1"}},
                    {"name": "n3", "spec": {"name": "n3", "switch": "sw1", "switch_port": "2"}},
                    {"name": "n4", "spec": {"name": "n4", "switch": "nosuch", "switch_port": "4"}},
                    {"name": "n5", "spec": {"name": "n5", "rpi_serial": "abc"}},
                ],
            )
        with caplog.at_level(logging.WARNING):
            store.migrate()
        with store.transaction() as conn:
            inv = load_inventory(conn)  # the Node model refuses the old keys: all gone
            switches = load_switches(conn)
        assert sorted(inv.nodes) == ["n1", "n3", "n4", "n5"]
        assert inv.nodes["n5"].rpi_serial == "abc"
        assert switches["sw1"].ports == {"1": "n1", "2": "n2"}  # n3's port was n2's already
        dropped = caplog.text
        assert "node n3: dropped switch sw1 port 2" in dropped
        assert "node n4: dropped switch nosuch port 4" in dropped
        assert "node n1" not in dropped
    finally:
        store.close()
