"""Real firmware reaches corral: QEMU (TCG) with its iPXE ROM, SeaBIOS and OVMF.

Proven from the server's log: the machine asked for its own boot script.
UEFI goes through OVMF's PXE, TFTP of ipxe.efi, then iPXE asks over HTTP; with
OVMF's PXE turned off, its UEFI HTTP boot (vendor class HTTPClient, arch 16)
fetches ipxe.efi over HTTP from the URL in corral's DHCP answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.lab.netns import Topology
from corral.lab.vm import OVMF_CODE, VmSpec, start_vm
from tests.conftest import need, need_tool
from tests.helpers.clients import stop, wait_for_text
from tests.helpers.serve import corral_serve

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow]


def boot_to_script(
    topo: Topology, corral_home: Path, tmp_path: Path, uefi: bool, http_boot: bool = False
) -> str:
    need_tool("qemu-system-x86_64")
    need(Path("/usr/lib/ipxe/undionly.kpxe").exists(), "Debian's ipxe package")
    if uefi:
        need(OVMF_CODE.exists(), "Debian's ovmf package")
    mac = "52:54:00:e2:00:01" if not uefi else "52:54:00:e2:00:02"
    mac = "52:54:00:e2:00:03" if http_boot else mac
    actions = LocalActions(Corral(Settings.from_env()))
    actions.add_network({"name": "prov", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1"})
    actions.add_profile({"name": "compute", "networks": ["prov"], "image": "tiny"})
    actions.add_nodes(["vm1"], {"profiles": ["compute"]}, mac=mac)
    srv = topo.namespace("srv")
    topo.bridge(srv, "br0", "10.77.0.1/24")
    tap = topo.tap(srv, "br0")
    log = tmp_path / "serve.log"
    with corral_serve(srv, corral_home, "--interface", "br0", log=log):
        # UEFI without the NIC's iPXE ROM: OVMF's own PXE must fetch ipxe.efi
        rom = "" if uefi else None
        spec = VmSpec(
            name="vm1",
            mac=mac,
            tap=tap,
            workdir=tmp_path / "vm",
            uefi=uefi,
            nic_rom=rom,
            http_boot=http_boot,
        )
        vm = start_vm(spec, srv)
        try:
            found = wait_for_text(log, f"boot script for {mac}", 150, vm)
        finally:
            stop(vm, sig_kill=True)
        text = log.read_text()
        serial = spec.serial_log.read_text(errors="replace") if spec.serial_log.exists() else ""
        assert found, f"no boot script request.\nserver log:\n{text}\nserial:\n{serial[-3000:]}"
        return text


def test_bios_ipxe_rom_reaches_boot_script(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    text = boot_to_script(topo, corral_home, tmp_path, uefi=False)
    assert "boot script for 52:54:00:e2:00:01" in text


def test_uefi_ovmf_loads_ipxe_efi_over_tftp_then_script(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    text = boot_to_script(topo, corral_home, tmp_path, uefi=True)
    assert "ipxe.efi" in text, f"OVMF did not fetch ipxe.efi over TFTP:\n{text}"
    assert time.monotonic() - started < 180


def test_uefi_ovmf_http_boot_loads_ipxe_efi_over_http_then_script(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    text = boot_to_script(topo, corral_home, tmp_path, uefi=True, http_boot=True)
    # the firmware itself fetched iPXE over HTTP (the route's log line), then iPXE its script
    assert "firmware ipxe.efi to 10.77.0." in text, text
