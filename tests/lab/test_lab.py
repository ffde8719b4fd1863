"""The lab's own logic: VM memory from the image, the queue's target state, a second `up`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.inventory.errors import InventoryError
from corral.lab.lab import Lab, LabOptions, memory_for
from corral.lab.netns import NetnsError, add_namespace, can_create_namespaces, run_ip, unique_name
from corral.lab.queue import finished_state
from corral.lab.workload import LAB_USER
from tests.conftest import need

MIB = 1 << 20


def test_vm_memory_covers_what_the_image_needs() -> None:
    assert memory_for(None) == 256  # not packed yet: the default
    assert memory_for(100 * MIB) == 256  # the tiny image keeps the default
    assert memory_for(200 * MIB) == 512  # 200 + 256 for a full OS, in 128 MB steps
    big = memory_for(915 * MIB)
    assert big * MIB >= 915 * MIB + 256 * MIB and big % 128 == 0


def test_queue_waits_for_the_state_it_is_told() -> None:
    row = {"state": "handover", "since": 10.0}
    assert finished_state(row, 5.0) is None  # handover is not booted
    assert finished_state(row, 5.0, until="handover") == "booted"
    assert finished_state({"state": "failed", "since": 10.0}, 5.0, until="handover") == "failed"
    assert finished_state(row, 11.0, until="handover") is None  # an earlier boot's state


@pytest.mark.netns
def test_second_up_does_not_read_the_previous_runs_serving_line(corral_home: Path) -> None:
    need(can_create_namespaces(), "network namespaces need root")
    lab = Lab(Corral(Settings.from_env()))
    lab.dir.mkdir(parents=True)
    # the previous run's server said it was serving; this one cannot (no bridge in
    # its namespace): `up` must wait for this run's line and fail, not power on
    (lab.dir / "serve.log").write_text("corral serving at http://10.99.0.1:9480\n")
    netns = add_namespace(unique_name("lab"))
    try:
        with pytest.raises(InventoryError, match="corral serve did not start in the lab"):
            lab.start_server(netns)
    finally:
        with contextlib.suppress(NetnsError):
            run_ip("netns", "delete", netns)
    assert (lab.dir / "serve.log").read_text().count("corral serving at") == 1


def test_the_slurm_preset_defines_a_slurm_cluster_on_the_lab_nodes(corral_home: Path) -> None:
    """What `lab up --preset slurm` puts into the inventory before any VM starts."""
    corral = Corral(Settings.from_env())
    names = Lab(corral).define(LabOptions(nodes=3, image="slurm", workload="slurm"))
    inv = corral.read()
    assert names == ["lab01", "lab02", "lab03"]
    assert inv.profiles["lab"].overlays == ["system", "slurm"]
    assert inv.profiles["lab"].tags == {"slurm": "compute"}
    assert inv.nodes["lab01"].tags == {"slurm": "controller"}
    assert inv.nodes["lab02"].tags == {}
    assert [u.name for u in inv.settings.users] == [LAB_USER.name]
    Lab(corral).define(LabOptions(nodes=3, image="slurm", workload="slurm"))  # a second up
    assert [u.name for u in corral.read().settings.users] == [LAB_USER.name]


def test_an_unknown_lab_preset_says_which_exist(corral_home: Path) -> None:
    corral = Corral(Settings.from_env())
    with pytest.raises(InventoryError, match="unknown lab preset 'pbs': one of slurm"):
        Lab(corral).define(LabOptions(workload="pbs"))
    assert "lab" not in corral.read().networks  # nothing half-defined
