"""Real VMs boot the tiny image through corral: the whole flow, end to end.

firmware PXE -> DHCP -> iPXE -> kernel + corral initramfs -> who-am-I ->
image over BitTorrent (or HTTP) -> overlay -> switch_root -> the image's init
prints `corral-node-up hostname=...`.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from corral.actions import LocalActions
from corral.images.api import get_image
from corral.lab.image import BOOTED_MARKER
from corral.power.run import Action, run_power, targets_for
from tests.e2e.conftest import LabFactory, boot, lab_api, serial

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(900)]


def test_three_nodes_boot_stateless_as_themselves(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=3)
    report = boot(the_lab, state, concurrency=3)
    assert report.failed == [], report.finished
    actions = LocalActions(the_lab.corral)
    for row in actions.status([vm.name for vm in state.vms]):
        assert row["state"] == "booted", row
    for vm in state.vms:
        log = serial(state, vm.name)
        # the hostname comes from this node's own overlay, not the image (which says "tiny")
        assert f"{BOOTED_MARKER} hostname={vm.name} " in log, log[-2000:]
        assert "image from the swarm" in log
    # the swarm: the tracker saw all three, and the server sent less than 3 images
    swarm = lab_api(the_lab, state, "/api/v1/swarm")
    arts = get_image(the_lab.corral, "tiny").artifacts
    assert arts is not None
    tracked = swarm["tracker"][arts.torrent.info_hash]
    assert tracked["peers_seen"] >= 3, tracked
    seeded = swarm["seeder"][arts.torrent.info_hash]["uploaded"]
    over_http = swarm["http_artifact_bytes"].get(arts.image.sha256, 0)
    assert seeded + over_http < 3 * arts.image.size, (seeded, over_http, arts.image.size)


def test_http_fallback_and_reset_during_download(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=2)
    actions = LocalActions(the_lab.corral)
    # lab01 never tries the swarm: plain HTTP must boot it
    actions.set_nodes(["lab01"], {"kernel_args": ["corral.swarm=0"]})
    report = boot(the_lab, state, concurrency=2)
    assert report.failed == [], report.finished
    assert "image over HTTP" in serial(state, "lab01")
    # reset lab02 while it downloads: it must come back and boot on the next try
    inv = actions.inventory()
    asyncio.run(run_power(targets_for(inv, ["lab02"]), Action.RESET))
    deadline = time.monotonic() + 120
    caught = False
    while time.monotonic() < deadline and not caught:
        (row,) = actions.status(["lab02"])
        if row["state"] in ("downloading", "unpacking"):
            asyncio.run(run_power(targets_for(inv, ["lab02"]), Action.RESET))
            caught = True
        time.sleep(0.2)
    assert caught, "lab02 never reached downloading after its reset"
    reset_at = time.time()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        (row,) = actions.status(["lab02"])
        if row["state"] == "booted" and row["since"] > reset_at:
            break
        time.sleep(1)
    else:
        pytest.fail(f"lab02 did not boot after a reset mid-download: {row}")
    kinds = [e["data"]["state"] for e in actions.events(0, 1000) if e["node"] == "lab02"]
    assert kinds.count("pxe") >= 3, kinds  # first boot, the reset, the reset mid-download


def test_uefi_node_boots(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1, uefi=True)
    report = boot(the_lab, state, concurrency=1)
    assert report.failed == [], report.finished
    assert f"{BOOTED_MARKER} hostname=lab01 " in serial(state, "lab01")


def test_stateful_node_installs_to_its_virtio_disk(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1, stateful=True)
    report = boot(the_lab, state, concurrency=1)
    log = serial(state, "lab01")
    assert report.failed == [], log[-3000:]
    assert f"{BOOTED_MARKER} hostname=lab01 " in log
    assert "root=/dev/vda1 " in log, log[-2000:]
    events = LocalActions(the_lab.corral).events(0, 1000)
    assert "installing" in [e["data"]["state"] for e in events if e["node"] == "lab01"]
