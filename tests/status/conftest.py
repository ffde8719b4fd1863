"""A live server with a small cluster whose nodes live at loopback addresses.

Every 127.0.0.0/8 address is this machine, so a test "is" node n001 by
binding its client socket to n001's reserved address, 127.0.0.11.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

import pytest

from corral.inventory.models import Cluster
from corral.store import schema
from tests.services.conftest import LiveServer, live_server

__all__ = ["live_server"]

SHA = {k: k[0] * 64 for k in ("image", "torrent", "kernel", "initramfs")}
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
ARTIFACTS: dict[str, Any] = {
    "digest": "sha256:" + "d" * 64,
    "image": {"sha256": SHA["image"], "size": 1000, "format": "tar+zstd"},
    "torrent": {
        "sha256": SHA["torrent"], "size": 100, "format": "torrent", "info_hash": "e" * 40,
        "piece_size": 262144, "tracker": "http://x/announce", "web_seed": "http://x/artifacts/a",
    },
    "kernel": {"sha256": SHA["kernel"], "size": 10, "format": "bzImage"},
    "initramfs": {"sha256": SHA["initramfs"], "size": 10, "format": "cpio+gzip"},
}  # fmt: skip


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
) -> Reply:
    """One HTTP request to `server` from the loopback address `source`."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


@pytest.fixture
def lab(live_server: LiveServer) -> LiveServer:
    live_server.corral.apply(Cluster.model_validate(CLUSTER))
    with live_server.corral.store.transaction() as conn:
        spec = {"name": "tiny", "artifacts": ARTIFACTS}
        conn.execute(schema.images.insert().values(name="tiny", digest=None, spec=spec))
    return live_server
