"""The virtual lab as a fixture: real QEMU VMs (TCG) netbooting from `corral serve`."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images.api import get_image
from corral.lab.accel import choose_accel
from corral.lab.image import prepare_image
from corral.lab.lab import SERVER_URL, Lab, LabOptions, LabState
from corral.lab.netns import can_create_namespaces, ns_argv
from corral.lab.queue import QueueReport, boot_in_waves
from tests.conftest import need, need_tool

LabFactory = Callable[..., tuple[Lab, LabState]]


@pytest.fixture
def lab(corral_home: Path) -> Iterator[LabFactory]:
    """`lab(nodes=3, ...)` brings a lab up; everything it made is removed afterwards."""
    need(can_create_namespaces(), "network namespaces need root")
    need_tool("qemu-system-x86_64", "g++", "zstd")  # g++: corral-fetch (images.fetchclient)
    corral = Corral(Settings.from_env())
    made: list[Lab] = []

    def make(**options: object) -> tuple[Lab, LabState]:
        prepare_image(corral, "tiny", SERVER_URL)
        opts = LabOptions(accel=choose_accel("tcg"), **options)  # type: ignore[arg-type]
        the_lab = Lab(corral)
        made.append(the_lab)
        return the_lab, the_lab.up(opts)

    try:
        yield make
    finally:
        for the_lab in made:
            the_lab.down()


def boot(lab: Lab, state: LabState, concurrency: int = 8, timeout: float = 300) -> QueueReport:
    names = [vm.name for vm in state.vms]
    return asyncio.run(boot_in_waves(LocalActions(lab.corral), names, concurrency, timeout))


def serial(state: LabState, name: str) -> str:
    vm = next(v for v in state.vms if v.name == name)
    return Path(vm.serial_log).read_text(errors="replace")


def lab_api(lab: Lab, state: LabState, path: str) -> Any:
    """GET an admin API path of the lab's server, from inside the lab network."""
    token = lab.corral.admin_token()
    argv = ["curl", "-sf", "-H", f"Authorization: Bearer {token}", f"{SERVER_URL}{path}"]
    out = subprocess.run(ns_argv(state.netns, argv), capture_output=True, check=True)
    return json.loads(out.stdout)


def server_image_bytes(lab: Lab, state: LabState, image: str) -> tuple[int, int]:
    """(bytes of `image`'s archive the lab's server has sent so far, the archive's size).

    Its own seed's payload plus whole or partial HTTP copies: what a node that takes
    its image from booted peers must not need from the server.
    """
    arts = get_image(lab.corral, image).artifacts
    assert arts is not None, f"image {image} is not packed"
    swarm = lab_api(lab, state, "/api/v1/swarm")
    seeded = swarm["seeder"].get(arts.torrent.info_hash, {}).get("uploaded", 0)
    over_http = swarm["http_artifact_bytes"].get(arts.image.sha256, 0)
    return int(seeded) + int(over_http), arts.image.size
