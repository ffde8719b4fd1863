"""HTTP serves nothing outside its roots, symlink or not (issue 10, finding 6)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.services.conftest import LiveServer
from tests.services.test_http_api import call

SECRET = b"root:$6$not-for-the-network:19000:0:99999:7:::\n"


def secret_outside(live: LiveServer) -> Path:
    path = live.corral.settings.paths.home.parent / "shadow"
    path.write_bytes(SECRET)
    return path


def test_a_symlink_in_the_artifact_store_leading_out_is_not_followed(
    live_server: LiveServer,
) -> None:
    artifacts = live_server.corral.settings.paths.artifacts
    artifacts.mkdir(parents=True, exist_ok=True)
    secret = secret_outside(live_server)
    content = os.urandom(1000)
    real = hashlib.sha256(content).hexdigest()
    (artifacts / real).write_bytes(content)
    out = hashlib.sha256(b"out").hexdigest()
    (artifacts / f"{out}.kernel").symlink_to(secret)
    (artifacts / f"{out}.abs").symlink_to("/etc/passwd")
    (artifacts / f"{real}.alias").symlink_to(real)  # inside the store: fine
    for name in (f"{out}.kernel", f"{out}.abs"):
        status, body, _ = call(live_server, "GET", f"/artifacts/{name}", token=None)
        assert status == 404, name
        assert SECRET not in body and b"root:" not in body
    status, body, _ = call(live_server, "GET", f"/artifacts/{real}.alias", token=None)
    assert (status, body) == (200, content)


def test_a_symlink_in_the_tftp_root_leading_out_is_not_served_over_http(
    live_server: LiveServer,
) -> None:
    tftp_root = live_server.corral.settings.paths.tftp_root
    secret = secret_outside(live_server)
    ipxe = tftp_root / "ipxe.efi"
    original = ipxe.read_bytes()
    status, body, _ = call(live_server, "GET", "/boot/ipxe.efi", token=None)
    assert (status, body) == (200, original)
    (tftp_root / "snponly.efi").unlink(missing_ok=True)
    (tftp_root / "snponly.efi").symlink_to("ipxe.efi")  # inside the root: fine
    ipxe.unlink()
    ipxe.symlink_to(secret)
    status, body, _ = call(live_server, "GET", "/boot/ipxe.efi", token=None)
    assert status == 404 and SECRET not in body
    ipxe.unlink()
    ipxe.write_bytes(original)
    status, body, _ = call(live_server, "GET", "/boot/snponly.efi", token=None)
    assert (status, body) == (200, original)
