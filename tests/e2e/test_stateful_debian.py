"""A stateful Debian node under UEFI (TCG): install onto an ESP and an xfs root, GRUB for BIOS
and UEFI from the image's own packages, then the node boots from its disk with no download.

The BIOS case (ext4, a file under /var kept across a reboot, `corral node reinstall`) is
lab03 of the shared Debian lab (tests/e2e/debian_lab/test_ops.py), on the same image.

The image is the `server` preset tree the Debian lab uses (tests/e2e/debian.py), cached by the
inputs that decide its content, so a change of preset can never meet a stale tree."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images import api
from corral.images.artifacts import pack_image
from corral.lab.lab import SERVER_URL
from corral.power.run import Action
from tests.e2e.conftest import LabFactory, boot, serial
from tests.e2e.debian import IMAGE, cached_tree
from tests.e2e.polling import power, states_since, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

DISK = {
    "device": "/dev/vda",
    "partitions": [{"label": "root", "format": "xfs", "mount": "/"}],
}


def test_a_stateful_uefi_node_boots_grub_from_its_esp_with_no_download(lab: LabFactory) -> None:
    tree = cached_tree()
    corral = Corral(Settings.from_env())
    api.import_image(corral, str(tree), IMAGE)
    pack_image(corral, IMAGE, SERVER_URL)
    the_lab, state = lab(nodes=1, stateful=True, image=IMAGE, memory_mb=1024, uefi=True)
    actions = LocalActions(the_lab.corral)
    esp = {"label": "efi", "size_mib": 64, "format": "vfat", "mount": "/boot/efi"}
    actions.set_profile("lab", {"disk": {**DISK, "partitions": [esp, *DISK["partitions"]]}})
    log = Path(state.vms[0].serial_log)

    report = boot(the_lab, state, concurrency=1, timeout=1800)
    assert report.failed == [], serial(state, "lab01")[-3000:]
    assert "GRUB installed on /dev/vda (bios,efi)" in serial(state, "lab01")
    installed_at = time.time()
    offset = len(log.read_bytes())
    power(the_lab, "lab01", Action.RESET)
    after = lambda: log.read_bytes()[offset:].decode(errors="replace")  # noqa: E731
    at_login = lambda: "login:" in after()  # noqa: E731
    wait_for("Debian from the disk at a login prompt", at_login, timeout=600, every=2)
    assert "BOOT_IMAGE=/boot/vmlinuz-" in after()
    # OVMF puts the disk before the network once it holds a bootable ESP, so the node may boot
    # it without asking corral (iPXE's `exit` is then never needed); either way, corral's
    # initramfs did not run (it would say `pxe` when it spends its boot token): no download
    since = states_since(actions, "lab01", installed_at)
    assert not {"pxe", "downloading", "installing", "unpacking"} & set(since), since
    assert "corral initramfs" not in after()
