"""The virtual lab: a provisioning network, `corral serve` and N QEMU nodes on one machine.

`up` creates a network namespace holding a bridge (the lab's provisioning
network, 10.99.0.0/24 with the server at .1), runs `corral serve` inside it,
defines the lab nodes (known MACs, the `qemu` power driver on each VM's QMP
socket) and starts every VM paused. VMs are then powered on a few at a time,
as many as the cores can carry, the next one when an earlier one has booted.
With `servers=2` (or more) a second `corral serve` runs on the same bridge
(10.99.0.253, its own namespace and CORRAL_HOME, the same database and keys):
several servers, one cluster, as docs/operations.md describes.
What it made is written to `$CORRAL_HOME/lab/state.json`, so `down` removes
exactly that: the processes it started (by PID, checked against their command
line), the namespace, and the lab's records in the inventory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import DEFAULT_HTTP_PORT
from corral.inventory.errors import InventoryError
from corral.lab.netns import (
    NetnsError,
    add_bridge,
    add_namespace,
    add_tap,
    attach_port,
    ns_argv,
    run_ip,
)
from corral.lab.vm import VmSpec, create_disk, qemu_argv, start_vm
from corral.lab.workload import add_users, workload

SERVER_IP = "10.99.0.1"
CIDR = "10.99.0.0/24"
BRIDGE = "br0"
NETWORK = "lab"
PROFILE = "lab"
SERVER_URL = f"http://{SERVER_IP}:{DEFAULT_HTTP_PORT}"
DEFAULT_MEMORY_MB = 256
MAX_SERVERS = 3  # the others at .253 and .252, above the dynamic range (.200-.250)
OS_MEMORY_MB = 256  # what the booted system itself uses, on top of the image's stateless need


@dataclass
class LabVm:
    name: str
    mac: str
    tap: str
    pid: int
    serial_log: str
    qmp: str


@dataclass
class LabServer:
    """A further `corral serve` on the lab's bridge (several servers, one cluster)."""

    netns: str
    pid: int
    home: str
    address: str


@dataclass
class LabState:
    netns: str
    serve_pid: int
    workdir: str
    vms: list[LabVm] = field(default_factory=list)
    servers: list[LabServer] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.rename(path)

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        vms = [LabVm(**v) for v in data.pop("vms", [])]
        servers = [LabServer(**v) for v in data.pop("servers", [])]
        return cls(**data, vms=vms, servers=servers)


@dataclass(frozen=True)
class LabOptions:
    nodes: int = 3
    uefi: bool = False
    memory_mb: int = DEFAULT_MEMORY_MB
    accel: Literal["tcg", "kvm"] = "tcg"
    image: str = "tiny"
    concurrency: int = 8
    stateful: bool = False
    kernel_args: tuple[str, ...] = ("console=ttyS0", "no_timer_check")
    # per-node exceptions: these nodes boot through OVMF / get this much memory / get a
    # virtio disk (every node has one when `stateful`)
    uefi_nodes: frozenset[str] = frozenset()
    node_memory_mb: Mapping[str, int] = field(default_factory=dict)
    servers: int = 1  # `corral serve` processes on the bridge, on one database
    disk_nodes: frozenset[str] = frozenset()
    workload: str | None = None  # a lab preset (corral.lab.workload): overlays, tags, users
    # per-node NIC model, a QEMU device name (e.g. "e1000"); virtio-net-pci otherwise
    nic_models: Mapping[str, str] = field(default_factory=dict)

    def firmware_uefi(self, name: str) -> bool:
        return self.uefi or name in self.uefi_nodes

    def memory_of(self, name: str) -> int:
        return self.node_memory_mb.get(name, self.memory_mb)

    def has_disk(self, name: str) -> bool:
        return self.stateful or name in self.disk_nodes


def memory_for(ram_needed: int | None) -> int:
    """VM memory (MB) for an image that needs `ram_needed` bytes stateless.

    A small image (the tiny one: about 100 MiB) keeps the default; a larger one
    gets its need plus room for a full OS (systemd, sshd, ...), in 128 MB steps.
    """
    if ram_needed is None or ram_needed <= DEFAULT_MEMORY_MB * (1 << 20) // 2:
        return DEFAULT_MEMORY_MB
    mb = ram_needed // (1 << 20) + OS_MEMORY_MB
    return max(DEFAULT_MEMORY_MB, -(-mb // 128) * 128)


def lab_mac(index: int) -> str:
    return f"52:54:00:99:{index // 256:02x}:{index % 256:02x}"


def node_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"lab{i:0{width}d}" for i in range(1, count + 1)]


def namespace_for(home: Path) -> str:
    """One lab per CORRAL_HOME: the namespace name is derived from the path."""
    import hashlib

    return "corral-lab-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:6]


class Lab:
    def __init__(self, corral: Corral) -> None:
        self.corral = corral
        self.actions = LocalActions(corral)
        self.dir = corral.settings.paths.lab
        self.state_file = self.dir / "state.json"

    # -- inventory --------------------------------------------------------------

    def define(self, opts: LabOptions) -> list[str]:
        """The lab network, profile and nodes (kept if they exist already)."""
        work = workload(opts.workload) if opts.workload else None  # before any change
        inv = self.actions.inventory()
        if NETWORK not in inv.networks:
            self.actions.add_network(
                {
                    "name": NETWORK,
                    "cidr": CIDR,
                    "gateway": SERVER_IP,
                    "dns_servers": [SERVER_IP],
                    "domain": "lab.corral",
                    "dynamic_range": "10.99.0.200-10.99.0.250",
                }
            )
        profile: dict[str, Any] = {
            "image": opts.image,
            "networks": [NETWORK],
            "kernel_args": list(opts.kernel_args),
            "power": {"driver": "qemu"},
            "boot": "stateful" if opts.stateful else "stateless",
        }
        if work is not None:
            profile["overlays"] = list(work.overlays)
            profile["tags"] = dict(work.profile_tags)
            add_users(self.corral, work.users)
        if opts.stateful:
            profile["disk"] = {
                "device": "/dev/vda",
                "partitions": [{"label": "root", "format": "ext4", "mount": "/"}],
            }
        if PROFILE in inv.profiles:
            self.actions.set_profile(PROFILE, profile)
        else:
            self.actions.add_profile({"name": PROFILE, **profile})
        names = node_names(opts.nodes)
        inv = self.actions.inventory()
        for i, name in enumerate(names, start=1):
            vms = self.dir / "vms"
            power = {
                "address": str(vms / f"{name}.qmp"),
                "options": {
                    "serial": str(vms / f"{name}.console"),
                    "console_log": str(vms / f"{name}.serial.log"),  # the dashboard's tail
                },
            }
            settings: dict[str, Any] = {"profiles": [PROFILE], "power": power}
            if work is not None and i == 1:
                settings["tags"] = dict(work.first_node_tags)
            if name in inv.nodes:
                self.actions.set_nodes([name], settings, mac=lab_mac(i))
            else:
                self.actions.add_nodes([name], settings, mac=lab_mac(i))
        return names

    def forget(self) -> None:
        inv = self.actions.inventory()
        lab_nodes = [n for n, node in inv.nodes.items() if PROFILE in node.profiles]
        if lab_nodes:
            self.actions.delete_nodes(lab_nodes)
        with contextlib.suppress(InventoryError):
            self.actions.delete_profile(PROFILE)
        with contextlib.suppress(InventoryError):
            self.actions.delete_network(NETWORK)

    # -- processes --------------------------------------------------------------

    def start_network(self) -> str:
        netns = namespace_for(self.corral.settings.paths.home)
        with contextlib.suppress(NetnsError):
            run_ip("netns", "delete", netns)
        add_namespace(netns)
        add_bridge(netns, BRIDGE, f"{SERVER_IP}/24")
        return netns

    def start_server(
        self, netns: str, interface: str = BRIDGE, home: Path | None = None, log_name: str = ""
    ) -> int:
        log_path = self.dir / (log_name or "serve.log")
        log = log_path.open("ab")
        start = log.tell()  # the log is appended to: read only what this server writes
        env = {**os.environ, "CORRAL_HOME": str(home or self.corral.settings.paths.home)}
        # one database for every server of the lab (a further server has its own home)
        env["CORRAL_DATABASE_URL"] = self.corral.settings.database_url
        argv = [
            sys.executable,
            "-m",
            "corral.cli",
            "serve",
            "-v",
            "--interface",
            interface,
            "--http-port",
            str(DEFAULT_HTTP_PORT),
        ]
        proc = subprocess.Popen(
            ns_argv(netns, argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "corral serving at" in log_since(log_path, start):
                return proc.pid
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise InventoryError(f"corral serve did not start in the lab: see {log_path}")

    def start_peer_server(self, netns: str, index: int) -> LabServer:
        """Server number `index` (2 or 3) at 10.99.0.<255 - index>, above the dynamic range
        and clear of the nodes' addresses (from .2 up): its own namespace on the
        bridge and its own CORRAL_HOME, holding copies of the cluster's keys and admin token
        (what docs/operations.md says to copy); it fetches the images from its peers."""
        address = f"{SERVER_IP.rsplit('.', 1)[0]}.{255 - index}"
        home = self.dir / f"server{index}"
        share_keys(self.corral.settings.paths.home, home, self.corral.settings.secret_key_file)
        peer_ns = f"{netns}-s{index}"
        with contextlib.suppress(NetnsError):
            run_ip("netns", "delete", peer_ns)
        add_namespace(peer_ns)
        attach_port(peer_ns, netns, BRIDGE, address=f"{address}/24")
        pid = self.start_server(peer_ns, "eth0", home, f"serve{index}.log")
        return LabServer(peer_ns, pid, str(home), address)

    def start_vms(self, netns: str, names: list[str], opts: LabOptions) -> list[LabVm]:
        vms = []
        workdir = self.dir / "vms"
        for i, name in enumerate(names, start=1):
            tap = f"tap{i}"
            with contextlib.suppress(NetnsError):
                run_ip("link", "delete", tap, netns=netns)
            add_tap(netns, BRIDGE, tap)
            disk = create_disk(workdir / f"{name}.qcow2") if opts.has_disk(name) else None
            spec = VmSpec(
                name=name,
                mac=lab_mac(i),
                tap=tap,
                workdir=workdir,
                memory_mb=opts.memory_of(name),
                uefi=opts.firmware_uefi(name),
                accel=opts.accel,
                disk=disk,
                paused=True,
                nic_model=opts.nic_models.get(name, VmSpec.nic_model),
            )
            proc = start_vm(spec, netns)
            wait_for_socket(spec.qmp_socket, proc)
            vms.append(
                LabVm(name, spec.mac, tap, proc.pid, str(spec.serial_log), str(spec.qmp_socket))
            )
        return vms

    # -- up / down ----------------------------------------------------------------

    def up(self, opts: LabOptions, progress: Callable[[str], None] = lambda _: None) -> LabState:
        if not 1 <= opts.servers <= MAX_SERVERS:
            raise InventoryError(f"a lab runs 1 to {MAX_SERVERS} servers, not {opts.servers}")
        existing = LabState.load(self.state_file)
        if existing is not None and pid_alive(existing.serve_pid):
            raise InventoryError("the lab is already up: 'corral lab down' first")
        self.dir.mkdir(parents=True, exist_ok=True)
        progress("defining lab nodes")
        names = self.define(opts)
        progress(f"creating the lab network ({CIDR} on {BRIDGE})")
        netns = self.start_network()
        state = LabState(netns=netns, serve_pid=0, workdir=str(self.dir))
        state.save(self.state_file)
        try:
            progress("starting corral serve in the lab")
            state.serve_pid = self.start_server(netns)
            state.save(self.state_file)
            for index in range(2, opts.servers + 1):
                progress(f"starting corral serve number {index} on the lab bridge")
                state.servers.append(self.start_peer_server(netns, index))
                state.save(self.state_file)
            progress(f"starting {len(names)} VMs (paused, {opts.accel})")
            state.vms = self.start_vms(netns, names, opts)
            state.save(self.state_file)
        except BaseException:
            self.down(keep_inventory=True)
            raise
        return state

    def down(self, keep_inventory: bool = False) -> list[str]:
        """Stop what `up` started and remove its namespace; returns what was done."""
        done = []
        state = LabState.load(self.state_file)
        if state is not None:
            for vm in state.vms:
                if stop_pid(vm.pid, "qemu-system"):
                    done.append(f"stopped VM {vm.name} (pid {vm.pid})")
            if stop_pid(state.serve_pid, "corral.cli"):
                done.append(f"stopped corral serve (pid {state.serve_pid})")
            for server in state.servers:
                if stop_pid(server.pid, "corral.cli"):
                    done.append(f"stopped corral serve at {server.address} (pid {server.pid})")
                with contextlib.suppress(NetnsError):
                    run_ip("netns", "delete", server.netns)
            with contextlib.suppress(NetnsError):
                run_ip("netns", "delete", state.netns)
                done.append(f"removed namespace {state.netns}")
            self.state_file.unlink(missing_ok=True)
        if not keep_inventory:
            self.forget()
        return done

    def state(self) -> LabState | None:
        return LabState.load(self.state_file)


def share_keys(home: Path, other: Path, secret_key: Path) -> None:
    """Copy what every server of one cluster must hold alike into `other` (0600 files)."""
    other.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = other / "pki"
    if pki.exists():
        shutil.rmtree(pki)
    shutil.copytree(home / "pki", pki)
    for source, name in ((home / "admin.token", "admin.token"), (secret_key, "secret.key")):
        if source.exists():
            shutil.copy2(source, other / name)
            (other / name).chmod(0o600)


def log_since(path: Path, offset: int) -> str:
    """What was appended to the log at `path` after byte `offset`."""
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """QEMU is ready for QMP (and so for power on) once its socket exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise InventoryError(
                f"QEMU exited at start (code {proc.returncode}): see {path.parent}"
            )
        if time.monotonic() > deadline:
            raise InventoryError(f"QEMU did not open {path} within {timeout:.0f} s")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie (killed, not yet reaped by its parent) does not:
    waiting for a killed child of ours to stop must not wait for the reaping too."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal said it exists
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_pid(pid: int, expect: str, timeout: float = 10.0) -> bool:
    """SIGTERM (then SIGKILL) `pid`, only if its command line contains `expect`."""
    if not pid_alive(pid) or expect not in cmdline_of(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid) and expect in cmdline_of(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if pid_alive(pid) and expect in cmdline_of(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reap(pid)
    return True


def reap(pid: int, timeout: float = 5.0) -> None:
    """Collect `pid`'s exit status if it is a child of ours (no zombie left behind)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not our child (its parent reaps it) or already reaped
        if done or time.monotonic() > deadline:
            return
        time.sleep(0.05)


__all__ = ["Lab", "LabOptions", "LabState", "qemu_argv"]
