"""A home network: the router (dnsmasq) hands out addresses, corral answers only booting.

Namespaces: a server namespace with the bridge and `corral serve --proxy-dhcp`,
a router namespace running dnsmasq as a real DHCP server (not proxy), and
two QEMU VMs (TCG) on taps: one BIOS with QEMU's iPXE ROM, one UEFI (OVMF)
with its own PXE stack. Both boot the tiny image to its init, which prints
the hostname from the node's own overlay.

The router reserves each VM's address (`dhcp-host`), as a home user does for
boards: with proxyDHCP corral never sees the router's leases, and it mints a
boot token only for a node's own (reserved) address.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.lab.image import BOOTED_MARKER, prepare_image
from corral.lab.lab import SERVER_IP, SERVER_URL
from corral.lab.netns import Topology, ns_argv
from corral.lab.vm import OVMF_CODE, VmSpec, start_vm
from tests.conftest import need, need_tool
from tests.helpers.clients import stop, wait_for_text
from tests.helpers.serve import corral_serve

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow]

ROUTER = "10.99.0.2"
VMS = {  # name: (mac, reserved address, uefi)
    "home1": ("52:54:00:ee:00:01", "10.99.0.41", False),
    "home2": ("52:54:00:ee:00:02", "10.99.0.42", True),
}


def start_dnsmasq(router_ns: str, tmp: Path) -> subprocess.Popen[bytes]:
    log = tmp / "dnsmasq.log"
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        f"--pid-file={tmp / 'dnsmasq.pid'}",
        f"--dhcp-leasefile={tmp / 'dnsmasq.leases'}",
        "--log-dhcp",
        "--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,1h",
        f"--dhcp-option=option:router,{ROUTER}",
        *(f"--dhcp-host={mac},{ip}" for mac, ip, _ in VMS.values()),
    ]
    proc = subprocess.Popen(
        ns_argv(router_ns, argv), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    if not wait_for_text(log, "DHCP, IP range", 10, proc):
        stop(proc)
        pytest.fail(f"dnsmasq did not start:\n{log.read_text()}")
    return proc


def test_bios_and_uefi_vms_boot_with_proxy_dhcp_beside_a_router(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    need_tool("qemu-system-x86_64", "dnsmasq", "aria2c", "zstd")
    need(OVMF_CODE.exists(), "Debian's ovmf package")
    app = Corral(Settings.from_env())
    actions = LocalActions(app)
    actions.add_network({"name": "home", "cidr": "10.99.0.0/24", "gateway": ROUTER})
    actions.add_profile(
        {"name": "pc", "networks": ["home"], "image": "tiny", "kernel_args": ["console=ttyS0"]}
    )
    for name, (mac, ip, _uefi) in VMS.items():
        actions.add_nodes([name], {"profiles": ["pc"]}, mac=mac, ip=ip)
    prepare_image(app, "tiny", SERVER_URL)

    srv = topo.namespace("srv")
    topo.bridge(srv, "br0", f"{SERVER_IP}/24")
    router = topo.namespace("rtr")
    topo.attach(router, srv, "br0", address=f"{ROUTER}/24")
    dnsmasq = start_dnsmasq(router, tmp_path)
    log = tmp_path / "serve.log"
    vms: dict[str, tuple[VmSpec, subprocess.Popen[bytes]]] = {}
    try:
        with corral_serve(srv, corral_home, "--proxy-dhcp", "--address", SERVER_IP, log=log):
            for name, (mac, _ip, uefi) in VMS.items():
                spec = VmSpec(
                    name=name,
                    mac=mac,
                    tap=topo.tap(srv, "br0"),
                    workdir=tmp_path / name,
                    memory_mb=384 if uefi else 256,
                    uefi=uefi,
                    nic_rom="" if uefi else None,  # UEFI: OVMF's own PXE, not the iPXE ROM
                )
                vms[name] = (spec, start_vm(spec, srv))
            booted = {
                name: wait_for_text(spec.serial_log, f"{BOOTED_MARKER} hostname={name} ", 420, proc)
                for name, (spec, proc) in vms.items()
            }
    finally:
        for _spec, proc in vms.values():
            stop(proc, sig_kill=True)
        stop(dnsmasq)
    router_log = (tmp_path / "dnsmasq.log").read_text(errors="replace")
    for name, (spec, _proc) in vms.items():
        serial = spec.serial_log.read_text(errors="replace") if spec.serial_log.exists() else ""
        assert booted[name], f"{name}:\n{serial[-2500:]}\nserve:\n{log.read_text()[-3000:]}"
        mac, ip, _uefi = VMS[name]
        assert "DHCPACK(" in router_log and f"{ip} {mac}" in router_log  # the router's address
