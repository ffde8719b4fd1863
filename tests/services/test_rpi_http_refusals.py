"""Raspberry Pi HTTP boot refuses, before making anything, what is not a node's own board."""

from __future__ import annotations

from corral.actions import LocalActions
from tests.services.conftest import LiveServer
from tests.services.test_http_api import call


def add_pi(live_server: LiveServer) -> None:
    actions = LocalActions(live_server.corral)
    actions.add_network({"name": "prov", "cidr": "10.77.0.0/24"})
    actions.add_profile({"name": "pi", "networks": ["prov"]})
    actions.add_nodes(["pi1"], {"profiles": ["pi"]}, mac="dc:a6:32:01:02:03", ip="10.77.0.21")
    actions.set_nodes(["pi1"], {"rpi_serial": "1a2b3c4d"})


def test_boot_img_of_a_board_no_node_has_is_not_found(live_server: LiveServer) -> None:
    add_pi(live_server)
    status, body, _ = call(live_server, "GET", "/boot/rpi/0badc0de/boot.sig", token=None)
    assert status == 404 and b"corral node set NODE --rpi-serial" in body


def test_boot_img_is_only_for_the_nodes_own_address(live_server: LiveServer) -> None:
    add_pi(live_server)  # pi1 is 10.77.0.21; this request comes from 127.0.0.1
    for name in ("boot.sig", "boot.img"):
        status, body, _ = call(live_server, "GET", f"/boot/rpi/1a2b3c4d/{name}", token=None)
        assert status == 403 and b"127.0.0.1 is not node pi1's address" in body
    assert not (live_server.corral.settings.paths.home / "rpi-http").exists()  # no token minted


def test_a_prefix_that_is_no_serial_or_mac_is_not_found(live_server: LiveServer) -> None:
    for prefix in ("..", "1a2b3c4d5", "not-a-serial"):
        status, _, _ = call(live_server, "GET", f"/boot/rpi/{prefix}/boot.img", token=None)
        assert status == 404, prefix
