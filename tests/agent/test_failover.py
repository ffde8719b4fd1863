"""The node agent moves to the next server when its server dies, and back.

Two `corral serve` processes on one database (SQLite, then PostgreSQL) and
sealing key, each with its own CORRAL_HOME (as tests/services/test_failover.py,
here as processes so that one can be killed with `-9`); the real agent with
both in /etc/corral/servers, as the initramfs leaves them. A node's `seen` time
in the shared database moves only when a live server records a heartbeat, so
after a `kill -9` it proves the heartbeat reached the other server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from corral.app import Corral
from corral.inventory.models import Cluster
from corral.services.http.agenthub import AgentHub
from corral.store.status import events_since, get_status
from tests.agent.conftest import (
    CLUSTER,
    NodeRoot,
    Server,
    credential_for,
    hardware,
    wait_until,
    write,
)
from tests.helpers.clients import stop, wait_for_text

pytestmark = pytest.mark.slow  # two servers started three times: 10-20 s

CORRAL = [sys.executable, "-m", "corral.cli"]
TIMEOUT = 4  # --heartbeat-timeout: agents report every second, `lost` after 4 s


@contextmanager
def corral_serve(home: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`corral serve` on `home` (HTTP on a free loopback port): the process and its URL."""
    log = home.parent / f"serve-{home.name}.log"
    argv = [*CORRAL, "serve", "-v", "--address", "127.0.0.1", "--http-port", "0", "--no-tls",
            "--no-dhcp", "--no-tftp", "--no-dns", "--no-seeder",
            "--heartbeat-timeout", str(TIMEOUT)]  # fmt: skip
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**env, "CORRAL_HOME": str(home)}
        )
    try:
        assert wait_for_text(log, "corral serving at", 60, proc, after=start), log.read_text()
        text = log.read_bytes()[start:].decode()
        yield proc, re.findall(r"corral serving at (\S+)", text)[0]
    finally:
        stop(proc)


def seen(app: Corral, node: str) -> float:
    """When a server last recorded a report of `node` (0: never)."""
    with app.store.transaction() as conn:
        status = get_status(conn, node)
    return 0.0 if status is None else float(status.get("seen") or 0.0)


def heartbeat_arrives(app: Corral, node: str, what: str) -> None:
    """Wait for two heartbeats recorded from now on (the first may have been in flight)."""
    for _ in range(2):
        wait_until(partial(seen_after, app, node, seen(app, node)), 3 * TIMEOUT, what)


def seen_after(app: Corral, node: str, time: float) -> bool:
    return seen(app, node) > time


def test_the_agent_moves_to_the_live_server_when_its_server_is_killed_and_back(
    tmp_path: Path, app: Corral
) -> None:
    """On SQLite and on PostgreSQL (`app`: the shared database of both servers)."""
    app.apply(Cluster.model_validate(CLUSTER))
    home = app.paths.home
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env["CORRAL_DATABASE_URL"] = app.settings.database_url
    env["CORRAL_SECRET_KEY_FILE"] = str(app.settings.secret_key_file)
    token = app.admin_token(create=True)
    assert token
    root = NodeRoot(tmp_path / "root-n1", "n1")
    with (
        corral_serve(home, env) as (first, first_url),
        corral_serve(tmp_path / "second", env) as (second, second_url),
    ):
        hardware(root.path)
        etc = root.path / "etc/corral"
        write(etc / "server", first_url + "\n")
        write(etc / "servers", f"{first_url}\n{second_url}\n")
        write(etc / "node", "n1\n")
        server = Server(app, first_url, token, AgentHub())
        write(etc / "node.credential", credential_for(server, "n1") + "\n", 0o600)
        root.booting(server)
        root.start()
        try:
            heartbeat_arrives(app, "n1", "heartbeats through the first server")
            first.kill()
            first.wait()
            heartbeat_arrives(app, "n1", "heartbeats through the second server")
            assert wait_for_text(root.log, f"talking to server {second_url} now", 5)

            # the first again, on another port: the second names it in its heartbeat
            # answers, and the agent goes there when the second dies in turn
            with corral_serve(home, env) as (_, again_url):
                assert again_url not in (first_url, second_url)
                assert wait_for_text(root.log, again_url, 30), root.log.read_text()
                second.kill()
                second.wait()
                heartbeat_arrives(app, "n1", "heartbeats through the first server again")
                assert wait_for_text(root.log, f"talking to server {again_url} now", 5)
                with app.store.transaction() as conn:
                    status = get_status(conn, "n1")
                assert status is not None and status["state"] == "ready"
                with app.store.transaction() as conn:
                    states = [e["data"]["state"] for e in events_since(conn) if e["node"] == "n1"]
                assert "lost" not in states  # it never went a heartbeat timeout without a server
        finally:
            root.stop()
