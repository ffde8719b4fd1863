"""`/nics/{sha256}?pci=VVVV:DDDD`: the NIC's own pack, else the full one; nothing else."""

from __future__ import annotations

import hashlib
import shutil
import urllib.parse

import zstandard

from corral.images.nicpack import MARKER, read_cpio
from tests.images.test_nicpack import full_pack
from tests.services.conftest import LiveServer
from tests.services.test_http_api import call


def test_a_node_gets_its_nics_pack_and_anything_else_the_full_pack(
    live_server: LiveServer,
) -> None:
    home = live_server.corral.settings.paths.home
    made = full_pack(home.parent)
    full = made.read_bytes()
    sha = hashlib.sha256(full).hexdigest()
    artifacts = live_server.corral.settings.paths.artifacts
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(made, artifacts / sha)

    status, body, headers = call(live_server, "GET", f"/nics/{sha}?pci=8086:100e", token=None)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    files = {e.name: e.data for e in read_cpio(zstandard.ZstdDecompressor().decompress(body))}
    assert files[MARKER] == b"e1000\n"
    assert len(body) < len(full)
    # no IDs (GRUB, an iPXE without PCI settings), bad ones, or IDs nothing drives
    odd = ("?pci=" + urllib.parse.quote("8086:100e/../x"), "?pci=" + "8" * 5000)
    for query in ("", "?pci=", "?pci=:", "?pci=1234:5678", "?pci=8086:100e0", "?pci=zz:zz", *odd):
        status, body, _ = call(live_server, "GET", f"/nics/{sha}{query}", token=None)
        assert (status, body == full) == (200, True), query
    # only a full NIC pack in the store: another digest, or another artifact, is not one
    other = hashlib.sha256(b"x").hexdigest()
    assert call(live_server, "GET", f"/nics/{other}?pci=8086:100e", token=None)[0] == 404
    assert call(live_server, "GET", "/nics/..%2Fetc%2Fpasswd", token=None)[0] == 404
    kernel = b"MZ not a pack"
    kernel_sha = hashlib.sha256(kernel).hexdigest()
    (artifacts / kernel_sha).write_bytes(kernel)
    assert call(live_server, "GET", f"/nics/{kernel_sha}?pci=8086:100e", token=None)[0] == 404
