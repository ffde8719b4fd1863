"""Cluster secrets reach a node only through its credential: no API answer, export or log."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import re
import tarfile
import time

import pytest
from click.testing import CliRunner

from corral.actions import LocalActions
from corral.cli.main import cli, register
from corral.inventory.models import Cluster
from corral.overlays.clustersecrets import ClusterSecrets
from corral.store.credentials import mint_boot_token
from tests.services.conftest import LiveServer
from tests.services.test_http_api import call
from tests.services.test_openapi import routes_of

CLUSTER = {
    "cluster": {"name": "lab", "domain": "lab.test"},
    "networks": [{"name": "lo", "cidr": "127.0.0.0/24"}],
    "profiles": [
        {"name": "compute", "networks": ["lo"], "tags": {"slurm": "compute"},
         "overlays": ["system", "slurm"]},
    ],
    "nodes": [
        {"name": "n1", "profiles": ["compute"], "tags": {"slurm": "controller"},
         "interfaces": [{"network": "lo", "mac": "52:54:00:00:00:01", "ip": "127.0.0.11"}]},
        {"name": "n2", "profiles": ["compute"],
         "interfaces": [{"network": "lo", "mac": "52:54:00:00:00:02", "ip": "127.0.0.12"}]},
    ],
}  # fmt: skip


def as_node(server: LiveServer, path: str, token: str, source: str) -> tuple[int, bytes]:
    """A call from the node's own address, as a booting node makes it."""
    host, port = server.url.removeprefix("http://").split(":")
    # generous: the first overlay makes host and user keys (ssh-keygen), slow on a loaded machine
    conn = http.client.HTTPConnection(host, int(port), timeout=60, source_address=(source, 0))
    try:
        method = "POST" if path.endswith("/credential") else "GET"
        conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def node_credential(server: LiveServer, node: str, mac: str, ip: str) -> str:
    with server.corral.store.transaction() as conn:
        boot = mint_boot_token(conn, node, mac, ip, time.time())
    status, body = as_node(server, "/api/v1/boot/self/credential", boot, ip)
    assert status == 200, body
    credential: str = json.loads(body)["credential"]
    return credential


def test_the_munge_key_reaches_its_node_and_no_api_answer_export_or_log(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    LocalActions(live_server.corral).apply(Cluster.model_validate(CLUSTER))
    vault = ClusterSecrets(live_server.corral.settings.paths.home / "secrets", "lab")
    secrets = [vault.munge_key, vault.k3s_token, vault.user_key("alice").private.splitlines()[1]]

    # the node, with its credential, gets the key in its overlay
    ip = "127.0.0.12"
    credential = node_credential(live_server, "n2", "52:54:00:00:00:02", ip)
    status, body = as_node(live_server, "/api/v1/boot/self/overlay", credential, ip)
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as tar:
        member = tar.extractfile("etc/munge/munge.key")
        assert member is not None
        assert member.read().decode().strip() == vault.munge_key

    # every admin GET without path parameters, and each per-node one for n1
    answers = {}
    for method, path in sorted(routes_of(live_server)):
        if method != "get" or "/boot/" in path or path.startswith("/ui/"):
            continue
        name = {"/api/v1/networks/": "lo", "/api/v1/profiles/": "compute"}.get(
            path.removesuffix("{name}"), "n1"
        )
        concrete = path.replace("{name}", name)
        if concrete == "/api/v1/events":  # a stream unless asked for JSON
            concrete += "?format=json"
        if re.search(r"\{\w+", concrete):
            continue
        status, answer, _ = call(live_server, "GET", concrete)
        answers[concrete] = (status, answer)
    assert "/api/v1/inventory" in answers
    assert "/api/v1/nodes/n1" in answers
    failed = {p: s for p, (s, _) in answers.items() if s != 200}
    # the BitTorrent tracker wants its parameters; n1 is no artifact
    assert failed == {"/announce": 400, "/artifacts/n1": 404}
    # the overlay of another node: refused with the admin token (a node's credential only)
    status, answer, _ = call(live_server, "GET", "/api/v1/boot/n1/overlay")
    answers["/api/v1/boot/n1/overlay"] = (status, answer)
    assert status in (401, 403)

    register()
    export = CliRunner().invoke(cli, ["export", "-o", "json"])
    assert export.exit_code == 0, export.output
    answers["corral export"] = (0, export.stdout.encode())
    logs = caplog.text.encode()
    for secret in secrets:
        for where, (_, answer) in answers.items():
            assert secret.encode() not in answer, f"a cluster secret in {where}"
        assert secret.encode() not in logs
