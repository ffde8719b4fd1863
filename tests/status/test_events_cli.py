"""`corral events`: filters by node, kind and time, locally and with `--server`; pruning."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result

from corral.app import Corral
from corral.cli.events import parse_since
from corral.cli.main import cli, register
from corral.config import Settings
from corral.inventory.models import Cluster
from corral.services.event_pruner import prune_once
from corral.store import schema
from corral.store.events import prune_events
from corral.store.status import record_state
from tests.services.conftest import LiveServer
from tests.status.conftest import CLUSTER

HOUR = 3600.0


def corral(*args: str) -> Result:
    register()
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def app(corral_home: Path) -> Corral:
    corral_app = Corral(Settings.from_env())
    corral_app.apply(Cluster.model_validate(CLUSTER))
    return corral_app


def history(app: Corral, now: float) -> None:
    """n001 booted two hours ago; n002 failed 10 minutes ago; n003 an alarm just now."""
    with app.store.transaction() as conn:
        for i, state in enumerate(("pxe", "downloading", "unpacking")):
            record_state(conn, "n001", state, now - 2 * HOUR + i)
        record_state(conn, "n002", "pxe", now - 600)
        record_state(conn, "n002", "failed", now - 599, error="disk not found")
        conn.execute(
            sa.insert(schema.events).values(
                time=now - 1, node="n003", kind="alarm", data={"message": "token reused"}
            )
        )


def events_json(*args: str, remote: tuple[str, ...] = ()) -> list[dict[str, object]]:
    result = corral(*remote, "events", "-o", "json", *args)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_filters_by_node_kind_and_time(app: Corral) -> None:
    history(app, time.time())
    everything = events_json()
    assert [e["node"] for e in everything] == ["n001"] * 3 + ["n002"] * 2 + ["n003"]
    assert [e["node"] for e in events_json("--node", "n[002-003]")] == ["n002", "n002", "n003"]
    assert [e["kind"] for e in events_json("--kind", "alarm")] == ["alarm"]
    recent = events_json("--since", "30m")
    assert [(e["node"], e["data"].get("state")) for e in recent] == [  # type: ignore[union-attr]
        ("n002", "pxe"),
        ("n002", "failed"),
        ("n003", None),
    ]
    assert [
        e["node"] for e in events_json("--since", "30m", "--kind", "state", "--limit", "1")
    ] == ["n002"]


def test_table_and_yaml_show_the_transition(app: Corral) -> None:
    history(app, time.time())
    table = corral("events", "--node", "n002")
    assert table.exit_code == 0, table.output
    assert "pxe -> failed error=disk not found" in table.output
    assert "NODE" in table.output and "n001" not in table.output
    docs = yaml.safe_load(corral("events", "--kind", "alarm", "-o", "yaml").output)
    assert docs[0]["data"] == {"message": "token reused"}


def test_since_takes_durations_and_dates_and_refuses_anything_else() -> None:
    now = 1_800_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("2h", now) == now - 7200
    assert parse_since("2026-12-03T10:00:00+00:00", now) == 1796292000.0
    bad = corral("events", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "neither a duration" in bad.output


def test_remote_events_take_the_same_filters(app: Corral, live_server: LiveServer) -> None:
    history(live_server.corral, time.time())
    remote = ("--server", live_server.url, "--token", live_server.token)
    rows = events_json("--node", "n002", "--since", "1h", remote=remote)
    assert [e["data"]["state"] for e in rows] == ["pxe", "failed"]  # type: ignore[index]
    assert [e["node"] for e in events_json("--kind", "alarm", remote=remote)] == ["n003"]


def test_follow_prints_events_as_they_happen(app: Corral, corral_home: Path) -> None:
    cmd = [sys.executable, "-m", "corral.cli", "events", "--follow", "-o", "json", "--node", "n001"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # printed whether it lands before the command starts (the last events) or after (followed)
        with app.store.transaction() as conn:
            record_state(conn, "n002", "pxe", time.time())  # filtered out
            record_state(conn, "n001", "pxe", time.time())
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "corral events --follow printed nothing in 30 s"
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        event = json.loads(line)
        assert (event["node"], event["data"]["state"]) == ("n001", "pxe")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pruning_drops_old_events_then_keeps_the_newest_rows(app: Corral) -> None:
    now = time.time()
    with app.store.transaction() as conn:
        conn.execute(
            sa.insert(schema.events),
            [
                {"time": now - age * 86400, "node": "n001", "kind": "state", "data": {"i": i}}
                for i, age in enumerate([40, 31, 10, 5, 2, 1, 0])
            ],
        )
    pruned = prune_events(app.store, now, max_age_days=30, max_rows=3, batch=2)
    assert (pruned.by_age, pruned.by_count) == (2, 2)
    with app.store.transaction() as conn:
        kept = [r.data["i"] for r in conn.execute(sa.select(schema.events).order_by("id"))]
    assert kept == [4, 5, 6]


def test_serve_prunes_with_the_cluster_settings(app: Corral) -> None:
    now = time.time()
    history(app, now)
    settings = {**CLUSTER, "cluster": {"events_max_age_days": 1 / 24}}  # one hour
    app.apply(Cluster.model_validate(settings))
    pruned = prune_once(app, now)
    assert pruned.by_age == 3  # n001's boot, two hours ago
    assert [e["node"] for e in events_json()] == ["n002", "n002", "n003"]
