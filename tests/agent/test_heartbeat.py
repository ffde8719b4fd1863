"""Heartbeats: a started agent makes its node `booted` then `ready` with its facts; a
stopped one leaves it `lost`; a restarted one makes it `ready` again, without a new `booted`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from corral.actions import LocalActions
from corral.app import Corral
from corral.cli.status import cells
from corral.client import RemoteActions
from corral.config import Settings
from corral.inventory.models import Cluster
from corral.services.http.agenthub import AgentHub
from corral.store.agent import all_facts
from corral.store.status import events_since, get_status
from tests.agent.conftest import (
    CLUSTER,
    FAST,
    NodeRoot,
    Server,
    credential_for,
    hardware,
    wait_until,
    write,
)
from tests.helpers.clients import stop, wait_for_text

CORRAL = [sys.executable, "-m", "corral.cli"]


def state_of(server: Server, node: str) -> str | None:
    with server.corral.store.transaction() as conn:
        status = get_status(conn, node)
    return None if status is None else str(status["state"])


def states_seen(server: Server, node: str) -> list[str]:
    with server.corral.store.transaction() as conn:
        return [e["data"]["state"] for e in events_since(conn) if e["node"] == node]


def test_agent_reports_booted_then_ready_with_facts_and_is_lost_when_stopped(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    root = node_root("n1")
    root.booting(server)
    root.start()
    wait_until(lambda: state_of(server, "n1") == "ready", 15, "n1 ready")
    assert states_seen(server, "n1")[-2:] == ["booted", "ready"]
    with server.corral.store.transaction() as conn:
        facts = all_facts(conn).get("n1")
    assert facts is not None
    assert (facts["cpus"], facts["memory_mib"], len(facts["gpus"])) == (4, 3936, 1)
    assert facts["nics"] == [
        {"name": "enp0s1", "mac": "52:54:00:00:00:01", "speed_mbps": 1000, "state": "up"}
    ]

    # what the agent found, as admins see it (--server), with the inventory's values winning
    LocalActions(server.corral).set_nodes(["n1"], {"facts": {"memory_mib": 1000}})
    remote = RemoteActions(server.url, server.token).facts(["n1", "n2"])
    assert [(f["node"], f["cpus"], f["memory_mib"], f["gpus"]) for f in remote] == [
        ("n1", 4, 1000, 1),
        ("n2", None, None, 0),
    ]
    assert remote[0]["disks"][0]["name"] == "vda"
    assert remote[1]["reported"] is None

    root.stop()
    wait_until(lambda: state_of(server, "n1") == "lost", FAST.heartbeat_timeout + 10, "n1 lost")
    with server.corral.store.transaction() as conn:
        status = get_status(conn, "n1")
    assert status is not None
    assert "no heartbeat for" in status["message"]
    row = LocalActions(server.corral).status(["n1"])[0]
    assert cells(row, time.time())[1:2] + cells(row, time.time())[-1:] == [
        "lost",
        status["message"],
    ]  # `corral status` shows why

    root.start()  # the same boot (same boot_id): heartbeats resume, no second `booted`
    wait_until(lambda: state_of(server, "n1") == "ready", 15, "n1 ready again")
    assert states_seen(server, "n1")[-4:] == ["booted", "ready", "lost", "ready"]
    assert states_seen(server, "n2") == []  # the other node was never touched


def test_corral_serve_marks_a_node_lost_after_its_heartbeat_timeout(
    tmp_path: Path, corral_home: Path
) -> None:
    """The whole path as deployed: `corral serve --heartbeat-timeout` as a process, a real agent."""
    app = Corral(Settings.from_env())
    app.apply(Cluster.model_validate(CLUSTER))
    log = tmp_path / "serve.log"
    argv = [*CORRAL, "serve", "-v", "--address", "127.0.0.1", "--http-port", "0", "--no-dhcp",
            "--no-tftp", "--no-dns", "--no-seeder", "--heartbeat-timeout", "4"]  # fmt: skip
    with log.open("ab") as out:
        serve = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for_text(log, "corral serving at", 60, serve), log.read_text()
        url = re.findall(r"corral serving at (\S+)", log.read_text())[0]
        token = app.admin_token()
        assert token
        server = Server(app, url, token, AgentHub())
        root = NodeRoot(tmp_path / "root-n1", "n1")
        hardware(root.path)
        write(root.path / "etc/corral/server", url + "\n")
        write(root.path / "etc/corral/node", "n1\n")
        write(root.path / "etc/corral/node.credential", credential_for(server, "n1") + "\n", 0o600)
        root.booting(server)
        root.start()
        try:
            wait_until(lambda: state_of(server, "n1") == "ready", 30, "n1 ready")
        finally:
            root.stop()
        wait_until(lambda: state_of(server, "n1") == "lost", 4 + 10, "n1 lost")
    finally:
        stop(serve)
