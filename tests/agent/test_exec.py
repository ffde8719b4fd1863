"""`corral exec` through real agents: output and exit code per node, a summary, exit 1 when
any node failed; through `--server` (RemoteActions) as an admin would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from corral.store.status import get_status
from tests.agent.conftest import NodeRoot, Server, wait_until

CORRAL = [sys.executable, "-m", "corral.cli"]


def corral(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_TOKEN": server.token}
    argv = [*CORRAL, "--server", server.url, *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=120)


def ready(server: Server, *nodes: str) -> None:
    def check() -> bool:
        with server.corral.store.transaction() as conn:
            return all((get_status(conn, n) or {}).get("state") == "ready" for n in nodes)

    wait_until(check, 20, f"{', '.join(nodes)} ready")


def start_agents(server: Server, node_root: Callable[[str], NodeRoot], *nodes: str) -> None:
    for node in nodes:
        root = node_root(node)
        root.booting(server)
        root.start()
    ready(server, *nodes)


def test_exec_over_two_agents_prints_each_nodes_output_and_fails_when_one_fails(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    start_agents(server, node_root, "n1", "n2")
    # each agent runs in its node's root: etc/corral/node names the node that ran it
    both = corral(server, "exec", "n[1-2]", "--", "cat etc/corral/node; echo to-stderr >&2")
    assert both.returncode == 0, both.stderr
    assert "n1 ok, exit 0\nn1\nto-stderr\n" in both.stdout
    assert "n2 ok, exit 0\nn2\nto-stderr\n" in both.stdout
    assert "2 node(s): 2 ok" in both.stderr

    one_fails = corral(
        server, "exec", "n[1-2]", "--", "cat etc/corral/node;", "grep -q n1 etc/corral/node"
    )
    assert one_fails.returncode == 1
    assert "n1 ok, exit 0\nn1\n" in one_fails.stdout
    assert "n2 failed, exit 1\nn2\n" in one_fails.stdout
    assert "2 node(s): 1 ok, 1 failed (n2)" in one_fails.stderr


def test_a_node_without_an_agent_is_refused_at_once_and_fails_the_command(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    start_agents(server, node_root, "n1")
    result = corral(server, "exec", "n[1,3]", "-o", "json", "--", "exit 3")
    assert result.returncode == 1
    runs = {r["node"]: r for r in json.loads(result.stdout)["runs"]}
    assert (runs["n1"]["state"], runs["n1"]["exit_code"]) == ("done", 3)
    assert runs["n3"]["state"] == "refused"
    assert runs["n3"]["error"].startswith("not running the corral agent (state new): ")


def test_a_command_over_its_timeout_is_killed_with_exit_124(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    start_agents(server, node_root, "n1")
    slow = corral(server, "exec", "n1", "--timeout", "0.5", "-o", "json", "--", "sleep 30")
    assert slow.returncode == 1
    run = json.loads(slow.stdout)["runs"][0]
    assert (run["exit_code"], run["timed_out"]) == (124, True)
    assert run["seconds"] < 10


def test_exec_output_is_bounded_to_its_tail(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    start_agents(server, node_root, "n1")
    chatty = corral(server, "exec", "n1", "-o", "json", "--", "seq 1 200000")
    assert chatty.returncode == 0, chatty.stderr
    run = json.loads(chatty.stdout)["runs"][0]
    assert run["truncated"] is True
    assert len(run["stdout"]) <= 64 * 1024
    assert run["stdout"].endswith("199999\n200000\n")
