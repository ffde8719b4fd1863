"""The REST API and the boot endpoints, over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any

import pytest

from corral.client import ClientError, RemoteActions
from corral.inventory.errors import Conflict, InventoryError, NotFound
from tests.services.conftest import LiveServer


def call(
    server: LiveServer,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "default",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if token == "default":
        token = server.token
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def seed(remote: RemoteActions) -> None:
    remote.add_network({"name": "prov", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1"})
    remote.add_profile({"name": "compute", "networks": ["prov"], "image": "tiny"})
    remote.add_nodes(["n01", "n02", "n03"], {"profiles": ["compute"]})
    remote.set_nodes(["n01"], {}, mac="52:54:00:00:00:01")


def test_admin_calls_need_the_token(live_server: LiveServer) -> None:
    for token in (None, "wrong"):
        status, body, _ = call(live_server, "GET", "/api/v1/nodes", token=token)
        assert status == 401
        assert "token" in json.loads(body)["error"]
    for path in ("/api/v1/nodes", "/api/v1/leases", "/api/v1/discovered"):
        status, _, _ = call(live_server, "GET", path)
        assert status == 200, path
    with pytest.raises(ClientError, match="refused the token"):
        RemoteActions(live_server.url, "wrong").inventory()


def test_token_file_is_private(live_server: LiveServer) -> None:
    mode = stat.S_IMODE(os.stat(live_server.corral.settings.paths.token).st_mode)
    assert mode == 0o600


def test_crud_through_the_remote_backend(live_server: LiveServer) -> None:
    remote = RemoteActions(live_server.url, live_server.token)
    seed(remote)
    inv = remote.inventory()
    assert sorted(inv.nodes) == ["n01", "n02", "n03"]
    assert [str(inv.nodes[n].interfaces[0].ip) for n in ("n01", "n02", "n03")] == [
        "10.77.0.2",
        "10.77.0.3",
        "10.77.0.4",
    ]
    # the server's own database holds what the API wrote
    local = live_server.corral.read()
    assert local.nodes["n01"].interfaces[0].mac == "52:54:00:00:00:01"
    with pytest.raises(Conflict, match="already used by node n01"):
        remote.set_nodes(["n02"], {}, mac="52:54:00:00:00:01")
    with pytest.raises(NotFound):
        remote.set_profile("nope", {"image": "x"})
    with pytest.raises(InventoryError, match="cidr"):
        remote.add_network({"name": "bad", "cidr": "10.0.0.0/33"})
    remote.delete_nodes(["n03"])
    assert "n03" not in live_server.corral.read().nodes


def test_secrets_are_masked_in_api_output(live_server: LiveServer) -> None:
    remote = RemoteActions(live_server.url, live_server.token)
    seed(remote)
    remote.set_nodes(["n01"], {"power": {"driver": "ipmi", "password": "hunter2"}})
    for path in ("/api/v1/nodes", "/api/v1/nodes/n01", "/api/v1/inventory"):
        status, body, _ = call(live_server, "GET", path)
        assert status == 200
        assert b"hunter2" not in body
    stored = live_server.corral.read().nodes["n01"].power.password
    assert stored is not None and stored.get_secret_value() == "hunter2"


def test_malformed_bodies_are_clear_errors(live_server: LiveServer) -> None:
    req = urllib.request.Request(
        live_server.url + "/api/v1/networks", data=b"{not json", method="POST"
    )
    req.add_header("Authorization", f"Bearer {live_server.token}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400
    assert "JSON" in json.loads(info.value.read())["error"]
    status, _, _ = call(live_server, "POST", "/api/v1/networks", ["a list"])
    assert status == 400


def test_artifacts_range_etag_and_confinement(live_server: LiveServer) -> None:
    content = os.urandom(100_000)
    name = hashlib.sha256(content).hexdigest()
    artifacts = live_server.corral.settings.paths.artifacts
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / name).write_bytes(content)
    (artifacts.parent / "secret").write_text("outside")
    status, body, headers = call(live_server, "GET", f"/artifacts/{name}", token=None)
    assert status == 200 and body == content
    etag = headers["Etag"]
    status, body, _ = call(
        live_server, "GET", f"/artifacts/{name}", token=None, headers={"Range": "bytes=10-19"}
    )
    assert status == 206 and body == content[10:20]
    status, _, _ = call(
        live_server, "GET", f"/artifacts/{name}", token=None, headers={"If-None-Match": etag}
    )
    assert status == 304
    for bad in ("..%2Fsecret", "%2E%2E/secret", "../secret", "secret", "a" * 64):
        status, body, _ = call(live_server, "GET", f"/artifacts/{bad}", token=None)
        assert status == 404, bad
        assert b"outside" not in body


def test_swarm_endpoint_reports_tracker_seeder_and_http(live_server: LiveServer) -> None:
    status, body, _ = call(live_server, "GET", "/api/v1/swarm", token=None)
    assert status == 401
    status, body, _ = call(live_server, "GET", "/api/v1/swarm")
    assert status == 200, body
    data = json.loads(body)
    assert set(data) == {"tracker", "seeder", "http_artifact_bytes"}
