"""Boot scripts, the end of a stateful install, reinstall and service mode, over a live server."""

from __future__ import annotations

import http.client
from typing import Any

from corral.actions import LocalActions
from corral.inventory.errors import Conflict
from tests.services.conftest import LiveServer
from tests.status.conftest import MAC1, N001, N002, Reply, request

DISK: dict[str, Any] = {
    "device": "/dev/vda",
    "partitions": [{"label": "root", "format": "xfs", "mount": "/"}],
}


def post_text(server: LiveServer, path: str, data: bytes, source: str) -> Reply:
    """POST `data` as text/plain from `source`, with its node credential (conftest sends JSON)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        headers = {"Content-Type": "text/plain"}
        credential = server.credentials.get(source)
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        conn.request("POST", path, body=data, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


def test_each_node_gets_its_effective_scripts(lab: LiveServer) -> None:
    actions = LocalActions(lab.corral)
    actions.set_profile("compute", {"scripts": {"pre": "echo profile-pre", "post": "echo p"}})
    actions.set_nodes(["n002"], {"scripts": {"post": "echo node-post", "pre": ""}})
    get = "/api/v1/boot/self/scripts/"
    assert request(lab, "GET", get + "pre", source=N001).body == b"echo profile-pre"
    assert request(lab, "GET", get + "post", source=N001).body == b"echo p"
    # n002's own post replaces the profile's; its empty pre removes the inherited one
    assert request(lab, "GET", get + "post", source=N002).body == b"echo node-post"
    assert request(lab, "GET", get + "pre", source=N002).body == b""
    assert request(lab, "GET", get + "part", source=N002).body == b""
    assert request(lab, "GET", get + "other", source=N001).status == 404
    assert request(lab, "GET", get + "pre", source="127.0.0.99").status == 401  # no credential


def test_script_output_becomes_a_bounded_event(lab: LiveServer) -> None:
    output = b"".join(b"line %d\n" % i for i in range(2000))
    reply = post_text(lab, "/api/v1/boot/self/scripts/pre?exit=3", output[-16000:], N001)
    assert reply.status == 200, reply.body
    (event,) = [e for e in LocalActions(lab.corral).events() if e["kind"] == "script"]
    assert event["node"] == "n001"
    assert (event["data"]["script"], event["data"]["exit"]) == ("pre", 3)
    assert event["data"]["output"].endswith("line 1999\n")
    assert len(event["data"]["output"]) <= 4000
    too_big = post_text(lab, "/api/v1/boot/self/scripts/pre?exit=0", b"x" * 20000, N001)
    assert too_big.status == 413
    assert post_text(lab, "/api/v1/boot/self/scripts/pre?exit=x", b"out", N001).status == 400
    assert post_text(lab, "/api/v1/boot/self/scripts/pre?exit=256", b"out", N001).status == 400


def test_an_installed_stateful_node_boots_from_its_disk_until_reinstalled(
    lab: LiveServer,
) -> None:
    actions = LocalActions(lab.corral)
    actions.set_nodes(["n001"], {"boot": "stateful", "disk": DISK})
    before = request(lab, "GET", f"/boot/{MAC1}.ipxe", source=N001).body.decode()
    assert "corral.boot=stateful" in before
    wipe = request(lab, "GET", "/api/v1/boot/self?format=sh", source=N001).body.decode()
    assert "CORRAL_DISK_WIPE=auto" in wipe  # no wipe setting: only blank or corral's own disks
    done = post_text(lab, "/api/v1/boot/self/installed?bootloader=bios,efi", b"", N001)
    assert done.status == 200, done.body
    local = request(lab, "GET", f"/boot/{MAC1}.ipxe", source=N001).body.decode()
    assert "sanboot --no-describe --drive 0x80" in local
    assert "kernel " not in local
    assert actions.reinstall(["n001"]) == ["n001"]
    again = request(lab, "GET", f"/boot/{MAC1}.ipxe", source=N001).body.decode()
    assert "corral.boot=stateful" in again
    assert post_text(lab, "/api/v1/boot/self/installed?bootloader=floppy", b"", N001).status == 400


def test_reinstall_refuses_a_stateless_node(lab: LiveServer) -> None:
    try:
        LocalActions(lab.corral).reinstall(["n002"])
    except Conflict as exc:
        assert "n002 is not stateful" in str(exc)
    else:
        raise AssertionError("reinstall of a stateless node was accepted")


def test_service_mode_holds_until_turned_off(lab: LiveServer) -> None:
    actions = LocalActions(lab.corral)
    actions.service_mode(["n001"])
    assert (
        "corral.boot=service"
        in request(lab, "GET", f"/boot/{MAC1}.ipxe", source=N001).body.decode()
    )
    assert request(lab, "GET", "/api/v1/boot/self", source=N001).json()["boot"] == "service"
    assert request(lab, "GET", "/api/v1/boot/self", source=N002).json()["boot"] == "stateless"
    # the REST route is the same action, with the admin token
    auth = {"Authorization": f"Bearer {lab.token}", "Content-Type": "application/json"}
    off = request(
        lab, "POST", "/api/v1/nodes/service", body={"names": "n001", "on": False}, headers=auth
    )
    assert off.status == 200, off.body
    assert off.json() == {"nodes": ["n001"]}
    assert request(lab, "GET", "/api/v1/boot/self", source=N001).json()["boot"] == "stateless"
    refused = request(lab, "POST", "/api/v1/nodes/service", body={"names": "n001"})
    assert refused.status == 401
