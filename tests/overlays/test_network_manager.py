"""The network overlay's NetworkManager keyfiles (RHEL-family images), read and verified by
libnm: NetworkManager's own keyfile reader, through GObject introspection, with no daemon
(Debian: python3-gi and gir1.2-nm-1.0). What libnm reads must be the inventory's settings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corral.config import Paths
from corral.overlays.render import OverlayRenderer
from tests.conftest import need
from tests.overlays.inventory import inventory

SYSTEM_PYTHON = "/usr/bin/python3"  # the distribution's, where python3-gi lives
KEYFILES = "/etc/NetworkManager/system-connections/"

# reads each keyfile with nm_keyfile_read(), verifies the connection, prints what NM sees
READER = """
import json, sys
import gi
gi.require_version("NM", "1.0")
from gi.repository import GLib, NM
out = {}
for path in sys.argv[1:]:
    kf = GLib.KeyFile()
    kf.load_from_file(path, GLib.KeyFileFlags.NONE)
    try:
        conn = NM.keyfile_read(kf, "/etc/NetworkManager/system-connections",
                               NM.KeyfileHandlerFlags.NONE)
        conn.verify()
    except GLib.Error as exc:
        out[path] = {"error": exc.message}
        continue
    ip4 = conn.get_setting_ip4_config()
    wired = conn.get_setting_wired() or conn.get_setting_infiniband()
    out[path] = {
        "id": conn.get_id(), "uuid": conn.get_uuid(), "type": conn.get_connection_type(),
        "interface": conn.get_interface_name(),
        "mac": getattr(wired, "get_mac_address", lambda: None)(),
        "mtu": wired.get_mtu() if wired else None,
        "method": ip4.get_method(),
        "addresses": [f"{a.get_address()}/{a.get_prefix()}"
                      for a in (ip4.get_address(i) for i in range(ip4.get_num_addresses()))],
        "gateway": ip4.get_gateway(),
        "dns": [ip4.get_dns(i) for i in range(ip4.get_num_dns())],
        "search": [ip4.get_dns_search(i) for i in range(ip4.get_num_dns_searches())],
        "never_default": ip4.get_never_default(),
    }
print(json.dumps(out))
"""


def libnm_available() -> bool:
    probe = "import gi; gi.require_version('NM', '1.0'); from gi.repository import NM"
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, check=False)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def read_with_libnm(paths: Paths, node: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    rendered = OverlayRenderer(paths).render(inventory(), node, ["network"])
    written = []
    for target, file in rendered.files.items():
        if target.startswith(KEYFILES):
            assert file.mode == 0o600, target  # NetworkManager ignores keyfiles others can read
            path = tmp_path / node / target.removeprefix(KEYFILES)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.data)
            written.append(str(path))
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", READER, *written], capture_output=True, text=True, check=True
    )
    return {Path(p).name: v for p, v in json.loads(done.stdout).items()}


@pytest.fixture(autouse=True)
def _libnm() -> None:
    need(libnm_available(), "libnm through python3-gi (Debian: gir1.2-nm-1.0) is not installed")


def test_a_static_interface_reads_back_in_libnm_as_the_inventory_sets_it(
    paths: Paths, tmp_path: Path
) -> None:
    conns = read_with_libnm(paths, "n1", tmp_path)
    eth0, ib0 = conns["corral-eth0.nmconnection"], conns["corral-ib0.nmconnection"]
    assert eth0.pop("uuid") != ib0.pop("uuid")
    assert eth0 == {
        "id": "corral-eth0",
        "type": "802-3-ethernet",
        "interface": None,  # bound by MAC, whatever the image names the NIC
        "mac": "52:54:00:00:00:01",
        "mtu": 0,
        "method": "manual",
        "addresses": ["10.77.0.11/24"],
        "gateway": "10.77.0.1",
        "dns": ["10.77.0.1", "10.77.0.2"],
        "search": ["demo.example"],
        "never_default": False,
    }
    # the second network: by name (no MAC in the inventory), its MTU, never the default route
    assert ib0 == {
        "id": "corral-ib0",
        "type": "infiniband",
        "interface": "ib0",
        "mac": None,
        "mtu": 65520,
        "method": "manual",
        "addresses": ["10.78.0.11/16"],
        "gateway": None,
        "dns": [],
        "search": [],
        "never_default": True,
    }


def test_an_interface_without_an_address_asks_dhcp_and_its_uuid_is_stable(
    paths: Paths, tmp_path: Path
) -> None:
    first = read_with_libnm(paths, "n3", tmp_path / "a")["corral-eth0.nmconnection"]
    again = read_with_libnm(paths, "n3", tmp_path / "b")["corral-eth0.nmconnection"]
    assert first["method"] == "auto" and first["addresses"] == []
    assert first["uuid"] == again["uuid"]  # a re-render is the same connection for NM
    other = read_with_libnm(paths, "n2", tmp_path / "c")["corral-eth0.nmconnection"]
    assert other["uuid"] != first["uuid"]
