"""Node states and events in the database (SQLite and PostgreSQL), across a restart."""

from __future__ import annotations

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.inventory import ops
from corral.inventory.index import Inventory
from corral.store.status import (
    TransitionRefused,
    events_since,
    get_status,
    last_event_id,
    list_status,
    record_state,
)


def three_nodes(inv: Inventory) -> None:
    ops.add_network(inv, {"name": "prov", "cidr": "10.9.0.0/24"})
    ops.add_profile(inv, {"name": "c", "networks": ["prov"], "image": "tiny"})
    ops.add_nodes(inv, ["n1", "n2", "n3"], {"profiles": ["c"]})


def test_record_state_keeps_data_and_appends_one_event_per_change(app: Corral) -> None:
    app.change(three_nodes)
    with app.store.transaction() as conn:
        first = record_state(conn, "n1", "pxe", 100.0, mac="52:54:00:00:00:01", ip="10.9.0.2")
        record_state(conn, "n1", "downloading", 101.0, bytes=0, total=1000, image="tiny")
        progress = record_state(conn, "n1", "downloading", 105.0, bytes=500, peers=2)
        record_state(conn, "n1", "failed", 106.0, error="digest mismatch")
    assert first.changed and not progress.changed
    with app.store.transaction() as conn:
        status = get_status(conn, "n1")
        events = events_since(conn, 0)
    assert status is not None
    assert (status["state"], status["since"], status["error"]) == (
        "failed",
        106.0,
        "digest mismatch",
    )
    assert (status["bytes"], status["peers"], status["ip"], status["image"]) == (
        500,
        2,
        "10.9.0.2",
        "tiny",
    )
    assert status["times"] == {"pxe": 100.0, "downloading": 101.0, "failed": 106.0}
    assert [(e["data"]["from"], e["data"]["state"]) for e in events] == [
        ("new", "pxe"),
        ("pxe", "downloading"),
        ("downloading", "failed"),
    ]
    assert events[-1]["data"]["error"] == "digest mismatch"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_refused_transition_changes_nothing(app: Corral) -> None:
    app.change(three_nodes)
    with app.store.transaction() as conn:
        record_state(conn, "n2", "pxe", 1.0)
    refused = pytest.raises(TransitionRefused, match="node n2: cannot go from pxe to ready")
    with refused, app.store.transaction() as conn:
        record_state(conn, "n2", "ready", 2.0)
    with app.store.transaction() as conn:
        assert get_status(conn, "n2") == {
            "node": "n2", "state": "pxe", "since": 1.0, "times": {"pxe": 1.0}, "seen": 1.0
        }  # fmt: skip
        assert len(events_since(conn, 0)) == 1
        forced = record_state(conn, "n2", "ready", 3.0, force=True)
    assert forced.status["state"] == "ready"


def test_a_reboot_forgets_the_last_boots_progress_but_not_its_error(app: Corral) -> None:
    app.change(three_nodes)
    with app.store.transaction() as conn:
        for t, state in enumerate(["pxe", "downloading", "failed"]):
            record_state(conn, "n3", state, float(t), bytes=7, error="boom" if t == 2 else None)
        again = record_state(conn, "n3", "pxe", 10.0)
    assert again.status["times"] == {"pxe": 10.0}
    assert "bytes" not in again.status
    assert again.status["error"] == "boom"


def test_list_status_covers_the_inventory_in_order(app: Corral) -> None:
    app.change(three_nodes)
    with app.store.transaction() as conn:
        record_state(conn, "n2", "pxe", 5.0)
        record_state(conn, "ghost", "pxe", 5.0)  # not in the inventory: not listed
        everything = list_status(conn)
        some = list_status(conn, ["n3", "n2", "nope", "n3"])
    assert [(s["node"], s["state"]) for s in everything] == [
        ("n1", "new"),
        ("n2", "pxe"),
        ("n3", "new"),
    ]
    assert [s["node"] for s in some] == ["n3", "n2"]


def test_states_and_events_survive_a_restart(corral_home: object) -> None:
    first = Corral(Settings.from_env())
    first.change(three_nodes)
    with first.store.transaction() as conn:
        for t, state in enumerate(["pxe", "downloading", "unpacking", "booted"]):
            record_state(conn, "n1", state, float(t))
    first.store.close()
    second = Corral(Settings.from_env())
    with second.store.transaction() as conn:
        status = get_status(conn, "n1")
        assert last_event_id(conn) == 4
        assert [e["data"]["state"] for e in events_since(conn, 2)] == ["unpacking", "booted"]
        # and the machine carries on from where it was
        record_state(conn, "n1", "ready", 9.0)
        with pytest.raises(TransitionRefused):
            record_state(conn, "n1", "unpacking", 10.0)
    second.store.close()
    assert status is not None and (status["state"], status["since"]) == ("booted", 3.0)


def test_a_later_successful_boot_clears_the_old_error(app: Corral) -> None:
    app.change(three_nodes)
    with app.store.transaction() as conn:
        record_state(conn, "n3", "pxe", 1.0)
        record_state(conn, "n3", "failed", 2.0, error="not enough memory")
        for t, state in enumerate(["pxe", "downloading", "unpacking"], start=3):
            still = record_state(conn, "n3", state, float(t))
            assert still.status["error"] == "not enough memory"
        handed = record_state(conn, "n3", "handover", 7.0)
    assert "error" not in handed.status
