"""`corral status` on the local database and against a live server (`--server`)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from corral import states
from corral.app import Corral
from corral.cli.main import cli, register
from corral.client import RemoteActions
from corral.config import Settings
from corral.inventory.models import Cluster
from corral.store.status import record_state
from tests.services.conftest import LiveServer
from tests.status.conftest import CLUSTER, N001, request


def corral(*args: str) -> Result:
    register()
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def app(corral_home: Path) -> Corral:
    corral_app = Corral(Settings.from_env())
    corral_app.apply(Cluster.model_validate(CLUSTER))
    return corral_app


def boot(app: Corral, node: str, path: list[str], **data: Any) -> None:
    with app.store.transaction() as conn:
        for state in path:
            record_state(conn, node, state, time.time(), **data)


def test_once_as_json(app: Corral) -> None:
    boot(app, "n001", ["pxe", "downloading"], ip=N001, image="tiny", bytes=512, total=1024, peers=2)
    result = corral("status", "--once", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["node"], r["state"]) for r in rows] == [
        ("n001", "downloading"),
        ("n002", "new"),
        ("n003", "new"),
    ]
    assert (rows[0]["bytes"], rows[0]["peers"], rows[0]["ip"]) == (512, 2, N001)


def test_table_and_selection(app: Corral) -> None:
    boot(app, "n002", ["pxe", "failed"], error="disk not found")
    result = corral("status", "n[002-003]", "--once")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "LAST ERROR" in lines[0]
    assert "n002" in lines[2] and "failed" in lines[2] and "disk not found" in lines[2]
    assert "n001" not in result.output
    yaml_out = corral("status", "n003", "-o", "yaml").output
    assert yaml_out.startswith("- node: n003\n  state: new\n")
    missing = corral("status", "n[003-004]", "--once")
    assert missing.exit_code == 1
    assert "no such node: n004" in missing.output


def test_graph_is_the_table_as_dot(app: Corral) -> None:
    result = corral("status", "--graph")
    assert result.exit_code == 0
    assert result.output == states.to_dot()


def test_watch_until_exit_codes(app: Corral) -> None:
    for node in ("n001", "n002"):
        boot(app, node, ["pxe", "downloading", "unpacking", "booted"])
    boot(app, "n001", ["ready"])
    done = corral("status", "n[001-002]", "--watch-until", "booted", "-o", "json")
    assert done.exit_code == 0, done.output
    assert "all 2 nodes reached booted" in done.stderr
    assert [r["state"] for r in json.loads(done.stdout)] == ["ready", "booted"]
    late = corral("status", "--watch-until", "booted", "--timeout", "0.3", "--interval", "0.1")
    assert late.exit_code == 3
    assert "timed out after 0.3s waiting for n003 (new)" in late.stderr
    boot(app, "n003", ["pxe", "failed"], error="no DHCP answer")
    failed = corral("status", "--watch-until", "ready", "--timeout", "5")
    assert failed.exit_code == 1
    assert "n003: no DHCP answer" in failed.stderr


def test_remote_status_and_watch_while_a_node_boots(lab: LiveServer) -> None:
    remote = ("--server", lab.url, "--token", lab.token)

    def node_boots() -> None:
        time.sleep(0.5)
        for state in ("pxe", "downloading", "unpacking", "booted"):
            request(lab, "POST", "/api/v1/boot/self/state", N001, {"state": state})

    thread = threading.Thread(target=node_boots)
    thread.start()
    try:
        result = corral(*remote, "status", "n001", "--watch-until", "booted", "--timeout", "20")
    finally:
        thread.join()
    assert result.exit_code == 0, result.output
    assert "n001: new" in result.stderr and "n001: booted" in result.stderr
    rows = json.loads(corral(*remote, "status", "--once", "-o", "json").stdout)
    assert (rows[0]["node"], rows[0]["state"], rows[0]["ip"]) == ("n001", "booted", N001)
    assert [e["data"]["state"] for e in lab_events(lab)] == [
        "pxe",
        "downloading",
        "unpacking",
        "booted",
    ]


def lab_events(lab: LiveServer) -> list[dict[str, Any]]:
    return RemoteActions(lab.url, lab.token).events(since=0)
