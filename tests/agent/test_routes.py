"""The agent's endpoints refuse what they must: no or wrong credential, oversized or
malformed bodies, results for commands never sent; exec needs the admin token."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

from corral.actions import LocalActions
from corral.services.http.agent import MAX_HEARTBEAT
from tests.agent.conftest import NodeRoot, Server


def call(
    server: Server, method: str, path: str, body: Any = None, bearer: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:  # fmt: skip
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=data, headers=headers)
        reply = conn.getresponse()
        text = reply.read()
    finally:
        conn.close()
    return reply.status, json.loads(text) if text else None


def credential(node_root: Callable[[str], NodeRoot], node: str) -> str:
    return (node_root(node).path / "etc/corral/node.credential").read_text().strip()


def test_node_routes_need_the_node_credential(server: Server) -> None:
    for method, path in (
        ("POST", "/api/v1/boot/self/heartbeat"),
        ("GET", "/api/v1/boot/self/runtime"),
        ("GET", "/api/v1/boot/self/commands"),
        ("POST", "/api/v1/boot/self/commands/1"),
    ):
        body = {"state": "ready"} if method == "POST" else None
        assert call(server, method, path, body)[0] == 401, path
        assert call(server, method, path, body, bearer="not-a-credential")[0] == 401, path
        # the admin token is not a node credential
        assert call(server, method, path, body, bearer=server.token)[0] == 401, path


def test_heartbeats_refuse_bad_bodies_with_a_clear_error(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    secret = credential(node_root, "n1")
    path = "/api/v1/boot/self/heartbeat"
    huge = b'{"state": "ready", "facts": {"kernel": "' + b"x" * MAX_HEARTBEAT + b'"}}'
    status, body = call(server, "POST", path, raw=huge, bearer=secret)
    assert status == 413
    assert "too large" in body["error"]
    cases = [
        ({"state": "lost"}, "request body: state: Input should be 'booted' or 'ready'"),
        ({"state": "ready", "extra": 1}, "request body: extra: Extra inputs are not permitted"),
        ({"state": "ready", "facts": {"cpus": -1}}, "facts.cpus: Input should be greater than"),
        ({"state": "ready", "facts": {"cpus": 4, "gpu": []}}, "facts.gpu: Extra inputs"),
        ([1, 2], "request body"),
    ]
    for bad, message in cases:
        status, body = call(server, "POST", path, bad, bearer=secret)
        assert status == 400, bad
        assert message in body["error"]
    status, body = call(server, "POST", path, raw=b"{not json", bearer=secret)
    assert status == 400


def test_a_node_cannot_post_a_result_for_a_command_it_was_not_sent(
    server: Server, node_root: Callable[[str], NodeRoot]
) -> None:
    secret = credential(node_root, "n1")
    actions = LocalActions(server.corral)
    # n1 is made ready by its heartbeat, so the job is queued for it
    call(server, "POST", "/api/v1/boot/self/heartbeat", {"state": "booted"}, bearer=secret)
    call(server, "POST", "/api/v1/boot/self/heartbeat", {"state": "ready"}, bearer=secret)
    job = actions.exec_start(["n1"], "true", 10)["job"]
    result = {"exit_code": 0, "stdout": "", "stderr": ""}
    status, body = call(server, "POST", f"/api/v1/boot/self/commands/{job}", result, bearer=secret)
    assert (status, body["error"]) == (404, f"exec job {job} was not sent to node n1")
    status, body = call(server, "GET", "/api/v1/boot/self/commands?wait=0", bearer=secret)
    assert (status, [c["id"] for c in body["commands"]]) == (200, [job])
    other = credential(node_root, "n2")  # n2 may not answer for n1
    status, _ = call(server, "POST", f"/api/v1/boot/self/commands/{job}", result, bearer=other)
    assert status == 404
    bad = {"exit_code": 300, "stdout": "", "stderr": ""}
    status, _ = call(server, "POST", f"/api/v1/boot/self/commands/{job}", bad, bearer=secret)
    assert status == 400
    status, _ = call(server, "POST", f"/api/v1/boot/self/commands/{job}", result, bearer=secret)
    assert status == 200
    status, body = call(server, "POST", f"/api/v1/boot/self/commands/{job}", result, bearer=secret)
    assert (status, body["error"]) == (409, f"exec job {job} on node n1 already has a result")
    assert call(server, "GET", "/api/v1/boot/self/commands?wait=31", bearer=secret)[0] == 400


def test_exec_needs_the_admin_token_and_a_sane_request(server: Server) -> None:
    request = {"names": "n1", "command": "true", "timeout": 5}
    assert call(server, "POST", "/api/v1/exec", request)[0] == 401
    assert call(server, "GET", "/api/v1/exec/1")[0] == 401
    token = server.token
    for bad, message in (
        ({**request, "names": "n[1-"}, ""),
        ({**request, "command": " "}, "exec needs a command"),
        ({**request, "timeout": 0}, "the timeout must be between 0 and 86400 seconds"),
        ({**request, "names": "n7"}, "no such node: n7"),
    ):
        status, body = call(server, "POST", "/api/v1/exec", bad, bearer=token)
        assert status in (400, 404), bad
        assert message in body["error"]
    status, body = call(server, "POST", "/api/v1/exec", request, bearer=token)
    assert status == 201
    assert body["runs"][0]["state"] == "refused"  # n1 runs no agent
    assert call(server, "GET", "/api/v1/exec/999", bearer=token)[0] == 404
