"""The virtual lab: a provisioning network, `corral serve` and N QEMU nodes on one machine.

`up` creates a network namespace holding a bridge (the lab's provisioning
network, 10.99.0.0/24 with the server at .1), runs `corral serve` inside it,
defines the lab nodes (known MACs, the `qemu` power driver on each VM's QMP
socket) and starts every VM paused. VMs are then powered on a few at a time,
as many as the cores can carry, the next one when an earlier one has booted.
What it made is written to `$CORRAL_HOME/lab/state.json`, so `down` removes
exactly that: the processes it started (by PID, checked against their command
line), the namespace, and the lab's records in the inventory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from corral.actions import LocalActions
from corral.app import Corral
from corral.inventory.errors import InventoryError
from corral.lab.netns import NetnsError, add_bridge, add_namespace, add_tap, ns_argv, run_ip
from corral.lab.vm import VmSpec, create_disk, qemu_argv, start_vm

SERVER_IP = "10.99.0.1"
CIDR = "10.99.0.0/24"
BRIDGE = "br0"
HTTP_PORT = 9480
NETWORK = "lab"
PROFILE = "lab"
SERVER_URL = f"http://{SERVER_IP}:{HTTP_PORT}"


@dataclass
class LabVm:
    name: str
    mac: str
    tap: str
    pid: int
    serial_log: str
    qmp: str


@dataclass
class LabState:
    netns: str
    serve_pid: int
    workdir: str
    vms: list[LabVm] = field(default_factory=list)

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
        return cls(**data, vms=vms)


@dataclass(frozen=True)
class LabOptions:
    nodes: int = 3
    uefi: bool = False
    memory_mb: int = 256
    accel: Literal["tcg", "kvm"] = "tcg"
    image: str = "tiny"
    concurrency: int = 8
    stateful: bool = False
    kernel_args: tuple[str, ...] = ("console=ttyS0", "no_timer_check")


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
                "options": {"serial": str(vms / f"{name}.console")},
            }
            settings = {"profiles": [PROFILE], "power": power}
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

    def start_server(self, netns: str) -> int:
        log = (self.dir / "serve.log").open("ab")
        env = {**os.environ, "CORRAL_HOME": str(self.corral.settings.paths.home)}
        argv = [
            sys.executable,
            "-m",
            "corral.cli",
            "serve",
            "-v",
            "--interface",
            BRIDGE,
            "--http-port",
            str(HTTP_PORT),
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
            if "corral serving at" in (self.dir / "serve.log").read_text(errors="replace"):
                return proc.pid
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise InventoryError(f"corral serve did not start in the lab: see {self.dir}/serve.log")

    def start_vms(self, netns: str, names: list[str], opts: LabOptions) -> list[LabVm]:
        vms = []
        workdir = self.dir / "vms"
        for i, name in enumerate(names, start=1):
            tap = f"tap{i}"
            with contextlib.suppress(NetnsError):
                run_ip("link", "delete", tap, netns=netns)
            add_tap(netns, BRIDGE, tap)
            disk = create_disk(workdir / f"{name}.qcow2") if opts.stateful else None
            spec = VmSpec(
                name=name,
                mac=lab_mac(i),
                tap=tap,
                workdir=workdir,
                memory_mb=opts.memory_mb,
                uefi=opts.uefi,
                accel=opts.accel,
                disk=disk,
                paused=True,
            )
            proc = start_vm(spec, netns)
            wait_for_socket(spec.qmp_socket, proc)
            vms.append(
                LabVm(name, spec.mac, tap, proc.pid, str(spec.serial_log), str(spec.qmp_socket))
            )
        return vms

    # -- up / down ----------------------------------------------------------------

    def up(self, opts: LabOptions, progress: Callable[[str], None] = lambda _: None) -> LabState:
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
            with contextlib.suppress(NetnsError):
                run_ip("netns", "delete", state.netns)
                done.append(f"removed namespace {state.netns}")
            self.state_file.unlink(missing_ok=True)
        if not keep_inventory:
            self.forget()
        return done

    def state(self) -> LabState | None:
        return LabState.load(self.state_file)


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
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    return True


__all__ = ["Lab", "LabOptions", "LabState", "qemu_argv"]
