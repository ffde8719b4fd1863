"""A live server with a small cluster whose nodes live at loopback addresses.

Every 127.0.0.0/8 address is this machine, so a test "is" node n001 by
binding its client socket to n001's reserved address, 127.0.0.11, and by
sending n001's credential: `boot_as` gets one the way a node does (its boot
script's token, spent from its address); the `lab` fixture issues them directly.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Any

import pytest

from corral.images import catalog, fetchclient
from corral.images.records import ArtifactFile, Artifacts, Image, Initramfs, Kernel, Torrent
from corral.inventory.models import Cluster
from corral.store.credentials import issue_credential
from tests.conftest import need, need_tool
from tests.services.conftest import LiveServer, live_server

__all__ = ["live_server"]

SHA = {k: k[0] * 64 for k in ("image", "torrent", "kernel", "initramfs")}
SHA["disk_initrd"] = "0" * 64
N001, N002, N003 = "127.0.0.11", "127.0.0.12", "127.0.0.13"
MAC1, MAC2, MAC3 = "52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"
CLUSTER: dict[str, Any] = {
    "networks": [{"name": "lo", "cidr": "127.0.0.0/24", "domain": "lab.test"}],
    "profiles": [
        {
            "name": "compute",
            "networks": ["lo"],
            "image": "tiny",
            "kernel_args": ["console=ttyS0"],
            "overlays": ["hostname", "hosts"],
        }
    ],
    "nodes": [
        {"name": n, "profiles": ["compute"], "interfaces": [{"network": "lo", "mac": m, "ip": ip}]}
        for n, m, ip in (("n001", MAC1, N001), ("n002", MAC2, N002), ("n003", MAC3, None))
    ],
}  # fmt: skip
DIGEST = "sha256:" + "d" * 64


def packed_image(name: str = "tiny") -> Image:
    """An image record as `image pack` writes it, built from the real models."""
    artifacts = Artifacts(
        fingerprint="f" * 16,
        digest=DIGEST,
        server_url="http://x",
        built=1.0,
        kernel_version="6.1.0-test",
        image=ArtifactFile(sha256=SHA["image"], size=1000, format="tar+zstd"),
        torrent=Torrent(
            sha256=SHA["torrent"], size=100, format="torrent", info_hash="e" * 40,
            piece_size=262144, tracker="http://x/announce", web_seed="http://x/artifacts/a",
        ),
        kernel=ArtifactFile(sha256=SHA["kernel"], size=10, format="bzImage"),
        initramfs=Initramfs(sha256=SHA["initramfs"], size=10, format="cpio+gzip", init="agent"),
        disk_initrd=ArtifactFile(sha256=SHA["disk_initrd"], size=20, format="initrd"),
    )  # fmt: skip
    kernel = Kernel(version="6.1.0-test", vmlinuz="boot/vmlinuz-6.1.0-test", modules=True)
    return Image(
        name=name, architecture="amd64", digest=DIGEST, size=30_000_000, files=400,
        kernels=[kernel],
        source="test", created=1.0, fingerprint="f" * 16, artifacts=artifacts,
    )  # fmt: skip


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    server: LiveServer,
    method: str,
    path: str,
    source: str = "127.0.0.1",
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Reply:
    """One HTTP request to `server` from the loopback address `source`.

    A node path (`/api/v1/boot/...`) from an address whose node has booted
    (`boot_as`) carries that node's credential, unless `headers` says otherwise.
    """
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    headers = dict(headers or {})
    credential = server.credentials.get(source)
    if path.startswith("/api/v1/boot/") and credential and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {credential}"
    try:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


def boot_token(server: LiveServer, mac: str, source: str) -> str | None:
    """The `corral.token=` of the iPXE script that `source` gets for `mac` (None: none)."""
    script = request(server, "GET", f"/boot/{mac}.ipxe", source=source).body.decode()
    found = re.search(r"corral\.token=(\S+)", script)
    return found.group(1) if found else None


def spend(server: LiveServer, token: str, source: str) -> Reply:
    auth = {"Authorization": f"Bearer {token}"}
    return request(server, "POST", "/api/v1/boot/self/credential", source=source, headers=auth)


def boot_as(server: LiveServer, mac: str, source: str) -> str:
    """Do what a node's firmware and initramfs do: boot script, spend its token; the credential."""
    token = boot_token(server, mac, source)
    assert token, f"no boot token for {mac} from {source}"
    reply = spend(server, token, source)
    assert reply.status == 200, reply.body
    credential: str = reply.json()["credential"]
    server.credentials[source] = credential
    return credential


@pytest.fixture
def cluster(live_server: LiveServer) -> LiveServer:
    """The cluster and its packed image, no node booted yet."""
    live_server.corral.apply(Cluster.model_validate(CLUSTER))
    with live_server.corral.store.transaction() as conn:
        catalog.insert(conn, packed_image())
    return live_server


@pytest.fixture
def lab(cluster: LiveServer) -> LiveServer:
    """The cluster, n001 and n002 holding a credential (as after `boot_as`, but still `new`)."""
    with cluster.corral.store.transaction() as conn:
        for node, mac, ip in (("n001", MAC1, N001), ("n002", MAC2, N002)):
            cluster.credentials[ip] = issue_credential(conn, node, mac, ip, time.time())
    return cluster


@pytest.fixture(params=["corral-fetch", "aria2c"])
def node_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH for the init's functions with one BitTorrent client: corral-fetch (the host
    architecture's initramfs), or aria2c alone (a foreign one: the init falls back to it)."""
    if request.param == "aria2c":
        need_tool("aria2c")
        assert shutil.which("corral-fetch") is None  # else the init would take that one
        return os.environ["PATH"]
    need(fetchclient.available(fetchclient.host_architecture()), "g++ or libtorrent-dev missing")
    bindir = tmp_path_factory.mktemp("client")
    (bindir / "corral-fetch").symlink_to(fetchclient.build())
    return f"{bindir}:{os.environ['PATH']}"
