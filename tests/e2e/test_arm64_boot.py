"""An arm64 UEFI machine network-boots the arm64 tiny image from corral, as itself.

`qemu-system-aarch64 -M virt -cpu cortex-a57` with Debian's AAVMF firmware,
under TCG, on a tap in the server's namespace. The firmware PXE-boots
(client architecture 11): corral's DHCP names Debian's signed GRUB network
image, GRUB reads the node's `grub.cfg` from corral's TFTP server (with the
boot token), loads the image's arm64 kernel and corral's arm64 initramfs.
The initramfs, made of arm64 Debian packages, spends the token over HTTPS
(arm64 `openssl s_client` against the cluster CA; `corral.server=` is the
HTTPS API, as in an iPXE script), checks the image's ed25519 signature
(`openssl pkeyutl`), fetches the image and switches to it; the image's init
prints the hostname from the node's own overlay.

The NIC is the only boot device (`bootindex`, which AAVMF honours through
fw_cfg's bootorder), so the firmware does not try disks or the EFI shell first.

The second test boots the same machine by UEFI HTTP boot instead (client
architecture 19, vendor class HTTPClient; AAVMF's PXE turned off through
fw_cfg): the firmware downloads `boot/arm64-efi/boot.img` from corral as a RAM
disk and starts Debian's signed removable-media GRUB from it, which boots the
kernel and initramfs in the same image with the node's grub.cfg and token.
No TFTP and no iPXE.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images import api, artifacts
from corral.images.tiny import build_tiny_tree
from corral.lab.image import BOOTED_MARKER, add_lab_init
from corral.lab.netns import Topology, ns_argv
from corral.lab.vm import OVMF_NO_PXE
from tests.conftest import need, need_tool
from tests.helpers.clients import stop, wait_for_text
from tests.helpers.serve import corral_serve
from tests.images.conftest import cache_dir

pytestmark = [pytest.mark.slow, pytest.mark.vm, pytest.mark.netns, pytest.mark.timeout(1500)]

AAVMF = Path("/usr/share/AAVMF")
MAC = "52:54:00:aa:00:01"
SERVER = "10.77.0.1"


def test_arm64_uefi_vm_netboots_the_arm64_image_as_itself(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    log = boot_arm64(topo, corral_home, tmp_path, http_boot=False)
    assert "UEFI PXEv4" in log


def test_arm64_uefi_http_boot_boots_a_ram_disk_image_as_itself(
    topo: Topology, corral_home: Path, tmp_path: Path
) -> None:
    log = boot_arm64(topo, corral_home, tmp_path, http_boot=True)
    assert f"URI: http://{SERVER}:9480/boot/arm64-efi/boot.img" in log
    assert "UEFI HTTPv4" in log and "UEFI PXEv4" not in log
    served = (corral_home.parent / "serve.log").read_text()
    assert "arm64 HTTP boot image for node a01 at 10.77.0.31 (with a boot token)" in served


def boot_arm64(topo: Topology, corral_home: Path, tmp_path: Path, http_boot: bool) -> str:
    """Boot a01 by PXE (GRUB over TFTP) or by UEFI HTTP boot; the serial log."""
    need_tool("qemu-system-aarch64", "dpkg", "apt-get", "readelf", "depmod")
    need((AAVMF / "AAVMF_CODE.fd").is_file(), "needs AAVMF (Debian package qemu-efi-aarch64)")
    app = Corral(Settings.from_env())
    actions = LocalActions(app)
    actions.add_network(
        {"name": "prov", "cidr": "10.77.0.0/24", "dynamic_range": "10.77.0.200-10.77.0.210"}
    )
    actions.add_profile(
        {
            "name": "arm",
            "networks": ["prov"],
            "image": "arm",
            "kernel_args": ["console=ttyAMA0"],
        }
    )
    actions.add_nodes(["a01"], {"profiles": ["arm"]}, mac=MAC, ip="10.77.0.31")
    tree = tmp_path / "rootfs"
    build_tiny_tree(tree, cache_dir(), "arm64")
    add_lab_init(tree)
    api.import_image(app, str(tree), "arm")
    artifacts.pack_image(app, "arm", f"http://{SERVER}:9480")

    srv = topo.namespace("srv")
    topo.bridge(srv, "br0", f"{SERVER}/24")
    tap = topo.tap(srv, "br0")
    vars_copy = tmp_path / "AAVMF_VARS.fd"
    shutil.copy(AAVMF / "AAVMF_VARS.fd", vars_copy)
    serial = tmp_path / "serial.log"
    qemu = [
        "qemu-system-aarch64",
        "-M",
        "virt",
        "-cpu",
        "cortex-a57",
        "-accel",
        "tcg",
        "-m",
        "1024",
        "-nographic",
        "-nodefaults",
        "-monitor",
        "none",
        "-serial",
        f"file:{serial}",
        "-no-reboot",
        "-drive",
        f"if=pflash,format=raw,readonly=on,file={AAVMF / 'AAVMF_CODE.fd'}",
        "-drive",
        f"if=pflash,format=raw,file={vars_copy}",
        "-netdev",
        f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=n0,mac={MAC},romfile=,bootindex=0",
        *(OVMF_NO_PXE if http_boot else []),
    ]
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-seeder"):
        vm = subprocess.Popen(
            ns_argv(srv, qemu), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            marker = f"{BOOTED_MARKER} hostname=a01 "
            booted = wait_for_text(serial, marker, 1200, vm)
        finally:
            stop(vm)
    log = serial.read_text(errors="replace")
    assert booted, log[-3000:]
    assert "corral: booting a01" in log
    # the arm64 openssl spent the token over HTTPS (checked against the cluster CA) and
    # verified the image's ed25519 signature
    assert "corral: image arm signed by the server" in log
    assert "aarch64" in log or "arm64" in log
    # GRUB loads one initramfs file: the first part and the full NIC pack end to end
    assert "corral: NIC pack: all" in log
    return log
