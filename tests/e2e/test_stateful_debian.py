"""A stateful Debian node (TCG, BIOS and UEFI): install onto an xfs root, GRUB from the image's
own packages, then its next network boot goes to the local disk, until `corral node reinstall`.

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
from tests.e2e.polling import power, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

DISK = {
    "device": "/dev/vda",
    "partitions": [{"label": "root", "format": "xfs", "mount": "/"}],
}


def states_since(actions: LocalActions, node: str, since: float) -> list[str]:
    return [
        e["data"]["state"]
        for e in actions.events(0, 10000)
        if e["node"] == node and e["kind"] == "state" and e["time"] > since
    ]


def test_a_stateful_debian_node_boots_from_its_disk_until_reinstalled(lab: LabFactory) -> None:
    tree = cached_tree()
    corral = Corral(Settings.from_env())
    api.import_image(corral, str(tree), IMAGE)
    pack_image(corral, IMAGE, SERVER_URL)
    the_lab, state = lab(nodes=1, stateful=True, image=IMAGE, memory_mb=1024)
    actions = LocalActions(the_lab.corral)
    actions.set_profile("lab", {"disk": DISK})
    log = Path(state.vms[0].serial_log)

    report = boot(the_lab, state, concurrency=1, timeout=1800)  # update-initramfs under TCG
    assert report.failed == [], serial(state, "lab01")[-3000:]
    assert "GRUB installed on /dev/vda (bios)" in serial(state, "lab01")
    installed_at = time.time()

    # the next network boot: iPXE hands over to the disk; GRUB boots the kernel from it
    offset = len(log.read_bytes())
    power(the_lab, "lab01", Action.RESET)
    after = lambda: log.read_bytes()[offset:].decode(errors="replace")  # noqa: E731
    wait_for(
        "Debian from the disk at a login prompt", lambda: "login:" in after(), timeout=600, every=2
    )
    text = after()
    assert "BOOT_IMAGE=/boot/vmlinuz-" in text, text[-3000:]  # GRUB put that there
    assert "corral initramfs" not in text  # corral's initramfs did not run again
    assert states_since(actions, "lab01", installed_at) == ["pxe"]  # no download, no install

    # reinstall: the next network boot runs the installer again (the image is downloaded)
    actions.reinstall(["lab01"])
    asked = time.time()
    power(the_lab, "lab01", Action.RESET)
    wait_for(
        "the reinstall's download",
        lambda: "downloading" in states_since(actions, "lab01", asked),
        timeout=600,
        every=2,
    )


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

    report = boot(the_lab, state, concurrency=1, timeout=1800)  # update-initramfs under TCG
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
    # it without asking corral (iPXE's `exit` is then never needed); either way, no download
    assert set(states_since(actions, "lab01", installed_at)) <= {"pxe"}
