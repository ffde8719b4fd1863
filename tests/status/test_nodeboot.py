"""The node self endpoints over a live server: identity by credential, states, overlays."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
import time

from corral.store import schema
from corral.store.status import get_status
from tests.services.conftest import LiveServer
from tests.status.conftest import (
    MAC1,
    MAC2,
    MAC3,
    N001,
    N002,
    N003,
    SHA,
    boot_as,
    boot_token,
    request,
)


def test_self_identifies_the_caller_by_its_credential(lab: LiveServer) -> None:
    reply = request(lab, "GET", "/api/v1/boot/self", source=N001)
    assert reply.status == 200, reply.body
    info = reply.json()
    assert (info["node"], info["hostname"], info["domain"]) == ("n001", "n001", "lab.test")
    assert (info["ip"], info["mac"], info["boot"], info["state"]) == (
        N001,
        MAC1,
        "stateless",
        "new",
    )
    assert info["kernel_args"] == ["console=ttyS0"]
    assert info["disk"] is None
    image = info["image"]
    assert (image["name"], image["digest"], image["ready"]) == ("tiny", "sha256:" + "d" * 64, True)
    assert image["artifacts"]["image"] == {
        "sha256": SHA["image"], "size": 1000, "format": "tar+zstd",
        "url": f"{lab.url}/artifacts/{SHA['image']}",
    }  # fmt: skip
    assert image["artifacts"]["torrent"]["info_hash"] == "e" * 40
    assert set(image["artifacts"]) == {"image", "torrent", "kernel", "initramfs", "disk_initrd"}
    # what the initramfs sizes the RAM root by: data + half a page per file, + archive + 64 MiB
    assert image["root_bytes"] == 30_000_000 + 400 * 2048
    assert image["ram_bytes"] == image["root_bytes"] + 1000 + 64 * 1024 * 1024
    assert info["overlay_url"] == f"{lab.url}/api/v1/boot/self/overlay"
    assert info["state_url"] == f"{lab.url}/api/v1/boot/self/state"
    assert request(lab, "GET", "/api/v1/boot/self", source=N002).json()["node"] == "n002"


def test_shell_format_evaluates_in_a_posix_shell(lab: LiveServer) -> None:
    reply = request(lab, "GET", "/api/v1/boot/self?format=sh", source=N001)
    assert reply.status == 200
    script = reply.body.decode() + 'printf "%s|%s|%s|%s|%s" "$CORRAL_NODE" "$CORRAL_IMAGE_URL" '
    script += '"$CORRAL_KERNEL_ARGS" "$CORRAL_TORRENT_INFO_HASH" "$CORRAL_IMAGE_RAM_BYTES"'
    script += '; printf "|%s|%s" "$CORRAL_DISK_INITRD_URL" "$CORRAL_IMAGE_KERNEL_VERSION"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    ram = 30_000_000 + 400 * 2048 + 1000 + 64 * 1024 * 1024
    initrd = f"{lab.url}/artifacts/{SHA['disk_initrd']}|6.1.0-test"  # for stateful installs
    assert out == f"n001|{lab.url}/artifacts/{SHA['image']}|console=ttyS0|{'e' * 40}|{ram}|{initrd}"


def test_callers_without_a_credential_and_wrong_macs_are_refused(lab: LiveServer) -> None:
    stranger = request(lab, "GET", "/api/v1/boot/self", source="127.0.0.99")
    assert stranger.status == 401
    assert "node credential" in stranger.json()["error"]
    forged = {"Authorization": "Bearer " + "x" * 43}
    assert request(lab, "GET", "/api/v1/boot/self", source=N001, headers=forged).status == 401
    wrong = request(lab, "GET", f"/api/v1/boot/self?mac={MAC2}", source=N001)
    assert wrong.status == 403
    right = request(lab, "GET", f"/api/v1/boot/self?mac={MAC1.upper()}", source=N001)
    assert right.status == 200
    assert request(lab, "GET", "/api/v1/boot/self?mac=zz", source=N001).status == 400


def test_a_node_without_a_reserved_address_boots_from_its_live_lease(lab: LiveServer) -> None:
    assert boot_token(lab, MAC3, N003) is None  # no lease yet: N003 is not n003's address
    with lab.corral.store.transaction() as conn:
        lease = {"mac": MAC3, "ip": N003, "network": "lo", "expires": time.time() + 60, "data": {}}
        conn.execute(schema.leases.insert().values(**lease))
    boot_as(lab, MAC3, N003)
    reply = request(lab, "GET", "/api/v1/boot/self", source=N003)
    assert reply.status == 200
    assert (reply.json()["node"], reply.json()["mac"]) == ("n003", MAC3)
    with lab.corral.store.transaction() as conn:  # an expired lease mints no token
        conn.execute(schema.leases.update().values(expires=time.time() - 1))
    assert boot_token(lab, MAC3, N003) is None


def post_state(lab: LiveServer, body: object, source: str = N001, name: str = "self") -> int:
    return request(lab, "POST", f"/api/v1/boot/{name}/state", source=source, body=body).status


def test_state_reports_follow_the_table(lab: LiveServer) -> None:
    for state in ("pxe", "downloading"):
        assert post_state(lab, {"state": state}) == 200
    progress = request(
        lab,
        "POST",
        "/api/v1/boot/self/state",
        N001,
        {"state": "downloading", "bytes": 10, "peers": 3},
    )
    assert progress.status == 200
    assert progress.json()["changed"] is False
    assert progress.json()["bytes"] == 10
    refused = request(lab, "POST", "/api/v1/boot/self/state", N001, {"state": "ready"})
    assert refused.status == 409
    assert "cannot go from downloading to ready" in refused.json()["error"]
    assert post_state(lab, {"state": "failed", "error": "no space left"}) == 200
    with lab.corral.store.transaction() as conn:
        status = get_status(conn, "n001")
    assert status is not None
    assert (status["state"], status["error"], status["peers"]) == ("failed", "no space left", 3)
    assert (status["ip"], status["mac"], status["image"]) == (N001, MAC1, "tiny")


def test_bad_reports_are_refused_with_the_key(lab: LiveServer) -> None:
    for body, word in [
        ({"state": "pxe", "colour": 1}, "colour"),
        ({"state": "pxe", "bytes": -1}, "bytes"),
        ({"state": "pxe", "peers": True}, "peers"),
        ({}, "state"),
        (["pxe"], "dictionary"),
    ]:
        reply = request(lab, "POST", "/api/v1/boot/self/state", N001, body)
        assert reply.status == 400, body
        assert word in reply.json()["error"]


def test_a_node_reports_only_its_own_state(lab: LiveServer) -> None:
    assert post_state(lab, {"state": "pxe"}, source=N001, name="n002") == 403
    assert post_state(lab, {"state": "pxe"}, source="127.0.0.99") == 401
    assert post_state(lab, {"state": "pxe"}, source=N001, name="n001") == 200
    with lab.corral.store.transaction() as conn:
        assert get_status(conn, "n002") is None


def overlay_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_a_node_gets_only_its_own_overlay(lab: LiveServer) -> None:
    own = request(lab, "GET", "/api/v1/boot/self/overlay", source=N001)
    assert own.status == 200
    assert own.headers["Content-Type"] == "application/gzip"
    files = overlay_files(own.body)
    assert files["etc/hostname"].decode().strip() == "n001"
    assert b"n002" in files["etc/hosts"]
    by_name = request(lab, "GET", "/api/v1/boot/n001/overlay", source=N001)
    assert by_name.body == own.body
    other = request(lab, "GET", "/api/v1/boot/n002/overlay", source=N001)
    assert other.status == 403
    assert "you are n001" in other.json()["error"]
    assert request(lab, "GET", "/api/v1/boot/self/overlay", source="127.0.0.99").status == 401
    theirs = request(lab, "GET", "/api/v1/boot/self/overlay", source=N002)
    assert overlay_files(theirs.body)["etc/hostname"].decode().strip() == "n002"
    etag = {"If-None-Match": own.headers["ETag"]}
    again = request(lab, "GET", "/api/v1/boot/self/overlay", source=N001, headers=etag)
    assert again.status == 304
