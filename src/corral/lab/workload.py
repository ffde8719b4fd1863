"""Lab workloads: a cluster that runs work, not only nodes that booted.

`corral lab up --preset slurm` builds the image with the `slurm` image preset,
gives the lab's profile the `slurm` overlay set and tags, makes the first node
the controller, adds one cluster user, and after the boot waits until the
workload answers (every node `idle` in `sinfo`) before it prints what the
workload's own tools say. The same pieces drive the e2e test
(tests/e2e/test_slurm_lab.py), so what the command shows is what CI checks.

Commands run on the nodes as root over SSH with the admin's key, host keys
checked strictly against the ones corral gave the nodes (`corral ssh`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.app import Corral
from corral.inventory.errors import InventoryError
from corral.inventory.index import Inventory
from corral.inventory.models import ClusterUser
from corral.lab.netns import ns_argv
from corral.overlays.adminkey import ensure_admin_key, ssh_argv, write_known_hosts
from corral.overlays.render import renderer_for

LAB_USER = ClusterUser(name="labuser", uid=2001, comment="corral lab cluster user")


@dataclass(frozen=True)
class Workload:
    """What one lab preset adds to the lab: image preset, overlays, tags, a user."""

    name: str
    image_preset: str
    overlays: tuple[str, ...]
    profile_tags: Mapping[str, str] = field(default_factory=dict)
    first_node_tags: Mapping[str, str] = field(default_factory=dict)
    users: tuple[ClusterUser, ...] = ()
    # at least this much per VM: the image's stateless need leaves little for the daemons
    min_memory_mb: int = 0


WORKLOADS: dict[str, Workload] = {
    "slurm": Workload(
        name="slurm",
        image_preset="slurm",
        overlays=("system", "slurm"),
        profile_tags={"slurm": "compute"},
        first_node_tags={"slurm": "controller"},
        users=(LAB_USER,),
        min_memory_mb=2048,
    ),
}


def workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise InventoryError(
            f"unknown lab preset {name!r}: one of {', '.join(sorted(WORKLOADS))}"
        ) from None


def add_users(corral: Corral, users: Sequence[ClusterUser]) -> None:
    """Add the workload's cluster users that the inventory does not have yet."""

    def change(inv: Inventory) -> None:
        have = {u.name for u in inv.settings.users}
        extra = [u for u in users if u.name not in have]
        if extra:
            inv.settings = inv.settings.model_copy(update={"users": [*inv.settings.users, *extra]})

    corral.change(change)


@dataclass
class NodeShell:
    """Runs commands on the lab's nodes as root, from inside the lab's namespace."""

    corral: Corral
    netns: str

    def __post_init__(self) -> None:
        ensure_admin_key(self.corral.settings.paths)

    def address(self, node: str) -> str:
        inv = self.corral.read()
        ip = renderer_for(self.corral.settings.paths).context(inv, node).node.ip
        if ip is None:
            raise InventoryError(f"node {node} has no reserved address")
        return str(ip)

    def run(
        self, node: str, command: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`command` (a shell line) on `node`; ssh's own failure is exit code 255."""
        paths = self.corral.settings.paths
        inv = self.corral.read()
        known = write_known_hosts(paths, renderer_for(paths).known_hosts(inv))
        argv = ssh_argv(str(paths.admin_ssh_key), str(known), self.address(node), (command,))
        argv[1:1] = ["-o", "BatchMode=yes"]
        return subprocess.run(
            ns_argv(self.netns, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )


def poll(
    what: str,
    check: Callable[[], tuple[bool, str]],
    timeout: float,
    interval: float = 3.0,
) -> str:
    """Call `check` until it says done (then its text), or fail with its last text."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            done, last = check()
        except subprocess.TimeoutExpired as exc:
            done, last = False, f"timed out: {exc.cmd!r}"
        if done:
            return last
        if time.monotonic() > deadline:
            raise InventoryError(f"{what}: not within {timeout:.0f} s; last: {last.strip()}")
        time.sleep(interval)


def sinfo_states(text: str) -> dict[str, str]:
    """`sinfo -h -N -o '%N %t'` as node -> state (a node in two partitions once)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2:
            out[words[0]] = words[1]
    return out


def wait_for_slurm(
    shell: NodeShell, controller: str, nodes: Sequence[str], timeout: float = 600
) -> str:
    """Poll `sinfo` on the controller until every node in `nodes` is idle; `sinfo`'s table."""

    def check() -> tuple[bool, str]:
        got = shell.run(controller, "sinfo -h -N -o '%N %t'", timeout=60)
        states = sinfo_states(got.stdout)
        done = got.returncode == 0 and all(states.get(n) == "idle" for n in nodes)
        return done, got.stdout + got.stderr

    poll(f"Slurm nodes {', '.join(nodes)} idle", check, timeout)
    return shell.run(controller, "sinfo").stdout


def show_workload(
    shell: NodeShell, work: Workload, nodes: Sequence[str], timeout: float = 600
) -> list[tuple[str, str]]:
    """Wait until the workload answers, then (command, output) of what shows it working."""
    controller = controller_of(shell.corral.read(), work, nodes)
    table = wait_for_slurm(shell, controller, nodes, timeout)
    job = f"srun -N{len(nodes)} hostname"
    ran = shell.run(controller, job, timeout=timeout)
    if ran.returncode != 0:
        raise InventoryError(f"{job} on {controller} failed: {ran.stderr.strip()}")
    return [("sinfo", table), (job, ran.stdout)]


def controller_of(inv: Inventory, work: Workload, nodes: Sequence[str]) -> str:
    """The node carrying the workload's first-node tags (the first node by default)."""
    for name in nodes:
        tags: Mapping[str, Any] = inv.nodes[name].tags
        if work.first_node_tags and all(tags.get(k) == v for k, v in work.first_node_tags.items()):
            return name
    return nodes[0]


__all__ = [
    "WORKLOADS",
    "NodeShell",
    "Workload",
    "poll",
    "show_workload",
    "wait_for_slurm",
    "workload",
]
