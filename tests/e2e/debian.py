"""A Debian 12 server image built by `corral image build`, booted stateless in one shared lab.

The debootstrap tree is what costs (about 2 min): it is built once per machine
with corral's own command and kept under the test cache
(`/var/cache/corral-test/debootstrap/<suite>-<preset>-<key>/rootfs`), keyed by
the suite, the package set and what `finish_tree` does; later runs re-import
it with `corral image import` (seconds).

The lab (`debian_lab`, scoped to the tests/e2e/debian_lab package) is three VMs:
lab01 boots through SeaBIOS, lab02 through OVMF (UEFI), both with enough
memory; lab03 has too little and must fail with the message that says so
(it has a virtio disk: tests/e2e/debian_lab/test_ops.py then installs it stateful,
which needs no room for the image in RAM). Other Debian tests reuse these
nodes instead of booting their own: put them in that package, one unit of
work for one worker (`tests/helpers/xdist_scopes.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images import api, debootstrap, presets
from corral.images.artifacts import pack_image
from corral.images.debootstrap import host_architecture
from corral.inventory.index import Inventory
from corral.lab.accel import choose_accel
from corral.lab.lab import SERVER_URL, Lab, LabOptions, LabState
from corral.lab.netns import ns_argv
from corral.lab.queue import QueueReport, boot_in_waves
from corral.overlays.sshkeys import HostKeyStore
from corral.power.run import Action, run_power, targets_for
from tests.images.conftest import cache_dir

SUITE = "bookworm"
PRESET = "server"
IMAGE = "debian"
MEMORY_MB = 1536  # the image needs about 1.1 GiB stateless (corral image show: ram needed)
SMALL_MEMORY_MB = 512
BOOTED = ("lab01", "lab02")  # lab02 boots through UEFI
SMALL = "lab03"
# the lab profile's post script: runs chrooted in the image before switch_root
POST_SCRIPT = (
    ". /etc/os-release\n"
    'echo "post ran on $CORRAL_NODE in $ID $VERSION_ID" > /etc/corral-post-marker\n'
    "echo post-done\n"
)
HOST_KEY_ALGORITHMS = {
    "ed25519": "ssh-ed25519",
    "ecdsa": "ecdsa-sha2-nistp256",
    "rsa": "rsa-sha2-512",
}


def tree_key(suite: str, preset: str) -> str:
    """The cache key: everything that decides the tree's content."""
    inputs = {
        "suite": suite,
        "packages": presets.packages(preset, host_architecture()),
        "cleanup": debootstrap.CLEANUP_GLOBS,
        "emptied": debootstrap.EMPTIED,
        "units": presets.ENABLED_UNITS,
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return f"{suite}-{preset}-{digest[:12]}"


def cached_tree(suite: str = SUITE, preset: str = PRESET) -> Path:
    """The built tree, from the cache; built with `corral image build` on a miss."""
    folder = cache_dir() / "debootstrap" / tree_key(suite, preset)
    if (folder / "rootfs").is_dir():
        return folder / "rootfs"
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".build-"))
    try:
        home = scratch / "home"
        argv = [sys.executable, "-m", "corral.cli", "image", "build", IMAGE]
        argv += ["--debootstrap", suite, "--preset", preset]
        env = {**os.environ, "CORRAL_HOME": str(home)}
        env.pop("CORRAL_DATABASE_URL", None)
        built = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=3600, check=False
        )
        assert built.returncode == 0, built.stderr[-3000:]
        (scratch / "out").mkdir()
        (home / "images" / IMAGE / "rootfs").rename(scratch / "out/rootfs")
        with contextlib.suppress(OSError):  # another run cached it first
            (scratch / "out").rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder / "rootfs"


@dataclass
class DebianLab:
    """The shared lab: lab01 (BIOS) and lab02 (UEFI) booted, lab03 failed for lack of RAM."""

    lab: Lab
    state: LabState
    report: QueueReport
    key: Path  # private half of the test key in the cluster's ssh_authorized_keys
    booted: tuple[str, ...] = BOOTED
    small: str = SMALL

    @property
    def corral(self) -> Corral:
        return self.lab.corral

    @property
    def actions(self) -> LocalActions:
        return LocalActions(self.corral)

    def ip(self, node: str) -> str:
        inv = self.corral.read()
        net = inv.primary_network(inv.nodes[node])
        assert net is not None
        iface = inv.nodes[node].interface_on(net.name)
        assert iface is not None and iface.ip is not None
        return str(iface.ip)

    def mac(self, node: str) -> str:
        mac = self.corral.read().nodes[node].interfaces[0].mac
        assert mac is not None
        return mac

    def known_hosts(self, node: str) -> Path:
        """A known_hosts file with exactly the node's host keys as the server keeps them."""
        keys = HostKeyStore(self.corral.settings.paths.home / "keys").public_keys(node)
        path = self.key.parent / f"known_hosts.{node}"
        path.write_text("".join(f"{self.ip(node)} {k}\n" for k in keys))
        return path

    def ssh(
        self, node: str, command: str, key_type: str = "ed25519", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` on `node` as root; the host key must be the overlay's (strict check)."""
        argv = [
            "ssh", "-i", str(self.key), "-F", "/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts(node)}",
            "-o", f"HostKeyAlgorithms={HOST_KEY_ALGORITHMS[key_type]}",
            f"root@{self.ip(node)}", command,
        ]  # fmt: skip
        return subprocess.run(
            ns_argv(self.state.netns, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_for_ssh(self, node: str, timeout: float = 600) -> str:
        """Poll until the node answers over ssh and systemd has finished starting; its state."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                done = self.ssh(node, "systemctl is-system-running --wait", timeout=120)
            except subprocess.TimeoutExpired:
                continue
            if done.returncode != 255:  # 255: ssh itself failed (not up yet)
                return done.stdout.strip()
            last = done.stderr.strip()
            time.sleep(2)
        raise AssertionError(f"{node}: no ssh within {timeout:.0f} s: {last}")

    def serial(self, node: str) -> str:
        vm = next(v for v in self.state.vms if v.name == node)
        return Path(vm.serial_log).read_text(errors="replace")

    def cli(
        self, *args: str, in_lab: bool = False, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run `corral ARGS` on this lab's CORRAL_HOME; `in_lab`: inside the lab's namespace
        (where the nodes' addresses are reachable, for ssh)."""
        env = {**os.environ, "CORRAL_HOME": str(self.corral.settings.paths.home)}
        argv = [sys.executable, "-m", "corral.cli", *args]
        return subprocess.run(
            ns_argv(self.state.netns, argv) if in_lab else argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def make_test_key(folder: Path) -> Path:
    key = folder / "id_ed25519"
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "corral-test", "-f", str(key)]
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return key


def authorize(corral: Corral, public_key: str) -> None:
    """Put the test key into the cluster's ssh_authorized_keys (the authorized-keys overlay)."""

    def change(inv: Inventory) -> None:
        inv.settings = inv.settings.model_copy(update={"ssh_authorized_keys": [public_key]})

    corral.change(change)


def start_debian_lab(workdir: Path) -> Iterator[DebianLab]:
    """Build (or reuse) the tree, import and pack it, boot the three VMs; tear down after."""
    home = workdir / "corral"
    corral = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))
    api.import_image(corral, str(cached_tree()), IMAGE)
    pack_image(corral, IMAGE, SERVER_URL)
    key = make_test_key(workdir)
    authorize(corral, key.with_suffix(".pub").read_text().strip())
    opts = LabOptions(
        nodes=3,
        memory_mb=MEMORY_MB,
        accel=choose_accel("tcg"),
        image=IMAGE,
        uefi_nodes=frozenset({"lab02"}),
        node_memory_mb={SMALL: SMALL_MEMORY_MB},
        disk_nodes=frozenset({SMALL}),
    )
    lab = Lab(corral)
    try:
        state = lab.up(opts)
        LocalActions(corral).set_profile("lab", {"scripts": {"post": POST_SCRIPT}})
        names = [vm.name for vm in state.vms]
        # the initramfs reports `handover`; `booted`/`ready` come from the node agent
        report = asyncio.run(
            boot_in_waves(LocalActions(corral), names, 3, timeout=1200, until="handover")
        )
        # a node that failed reboots and fails again: stop it, it has said what it had to
        inv = corral.read()
        asyncio.run(run_power(targets_for(inv, [SMALL]), Action.OFF))
        yield DebianLab(lab, state, report, key)
    finally:
        lab.down()
