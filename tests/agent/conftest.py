"""The real node agent, as a process, against a live `corral serve` on loopback.

Each agent runs with the system's /usr/bin/python3 in isolated mode without
site-packages (`-I -S`): what a Debian image's python3 gives it. Its
root is a temporary directory laid out like a node's: /etc/corral as the
initramfs leaves it, and /proc and /sys files in the kernel's formats.
The server runs with short heartbeat settings, so `lost` comes in seconds.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.inventory.models import Cluster
from corral.overlays.sources import BUILTIN_ROOT
from corral.services.http.agenthub import AgentHub, AgentSettings, agent_hub
from corral.services.http.context import CONTEXT
from corral.services.serve import CorralServer, ServeOptions
from corral.store.credentials import mint_boot_token
from corral.store.status import record_state
from tests.helpers.clients import stop
from tests.helpers.loop import run_in_thread

AGENT = BUILTIN_ROOT / "agent/usr/lib/corral/corral-agent"
PYTHON = "/usr/bin/python3"
FAST = AgentSettings(heartbeat_every=0.3, overlay_every=0.3, heartbeat_timeout=1.5, recheck=0.2)
T = TypeVar("T")

CLUSTER: dict[str, Any] = {
    "cluster": {"name": "lab", "domain": "lab.test"},
    "networks": [{"name": "lo", "cidr": "127.0.0.0/24"}],
    "profiles": [{"name": "compute", "networks": ["lo"], "tags": {"partition": "batch"}}],
    "nodes": [
        {"name": "n1", "profiles": ["compute"],
         "interfaces": [{"network": "lo", "mac": "52:54:00:00:00:01", "ip": "127.0.0.11"}]},
        {"name": "n2", "profiles": ["compute"],
         "interfaces": [{"network": "lo", "mac": "52:54:00:00:00:02", "ip": "127.0.0.12"}]},
        {"name": "n3", "profiles": ["compute"],
         "interfaces": [{"network": "lo", "mac": "52:54:00:00:00:03", "ip": "127.0.0.13"}]},
    ],
}  # fmt: skip


@dataclass
class Server:
    corral: Corral
    url: str
    token: str
    hub: AgentHub


@dataclass
class NodeRoot:
    """A node's root directory for the agent (`--root`)."""

    path: Path
    node: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.path.parent / f"agent-{self.node}.log"

    def booting(self, server: Server) -> None:
        """Report what the initramfs reports after spending its token: downloading, unpacking."""
        now = time.time()
        with server.corral.store.transaction() as conn:
            for state in ("downloading", "unpacking"):
                record_state(conn, self.node, state, now)

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            argv = [PYTHON, "-I", "-S", str(AGENT), "--root", str(self.path)]
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def hardware(root: Path) -> None:
    """/proc and /sys files of a 4-CPU VM with one NVIDIA GPU, a virtio disk and one NIC.

    Beside them what the agent must leave out: QEMU's VGA, a loop device, the
    loopback interface and a bridge (no `device`).
    """
    cpu = (
        "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: QEMU Virtual CPU version 2.5+\n"
    )
    write(root / "proc/cpuinfo", "\n".join(cpu.format(n=n) for n in range(4)))
    write(root / "proc/meminfo", "MemTotal:        4030464 kB\nMemFree:         3000000 kB\n")
    write(root / "proc/sys/kernel/osrelease", "6.1.0-28-amd64\n")
    write(root / "proc/sys/kernel/random/boot_id", "0b6c3a51-1d1e-4c53-9a0e-3f1bb2cb7f10\n")
    pci = root / "sys/bus/pci/devices"
    for slot, klass, vendor, device in (
        ("0000:00:01.0", "0x030000", "0x1234", "0x1111"),  # QEMU VGA: not a GPU
        ("0000:01:00.0", "0x030200", "0x10de", "0x20b0"),  # NVIDIA A100
    ):
        for name, value in (("class", klass), ("vendor", vendor), ("device", device)):
            write(pci / slot / name, value + "\n")
    write(root / "sys/block/vda/size", "41943040\n")  # 20 GiB in 512-byte sectors
    write(root / "sys/block/vda/queue/rotational", "1\n")
    write(root / "sys/block/vda/device/model", "QEMU HARDDISK   \n")
    write(root / "sys/block/loop0/size", "0\n")
    write(root / "sys/block/loop0/queue/rotational", "0\n")
    for nic, mac in (("enp0s1", "52:54:00:00:00:01"), ("lo", "00:00:00:00:00:00")):
        write(root / "sys/class/net" / nic / "address", mac + "\n")
        write(root / "sys/class/net" / nic / "operstate", "up\n")
    (root / "sys/class/net/enp0s1/device").mkdir()
    (root / "sys/class/net/lo/device").mkdir()
    write(root / "sys/class/net/br0/address", "52:54:00:aa:bb:cc\n")
    write(root / "sys/class/net/enp0s1/speed", "1000\n")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def credential_for(server: Server, node: str) -> str:
    """The node credential, got as a booting node gets it: the server mints a boot token
    (as when it renders the node's iPXE script) and the node spends it from its address."""
    interface = next(n for n in CLUSTER["nodes"] if n["name"] == node)["interfaces"][0]
    with server.corral.store.transaction() as conn:
        token = mint_boot_token(conn, node, interface["mac"], interface["ip"], time.time())
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(
        host, int(port), timeout=10, source_address=(interface["ip"], 0)
    )
    try:
        conn.request(
            "POST", "/api/v1/boot/self/credential", headers={"Authorization": f"Bearer {token}"}
        )
        reply = conn.getresponse()
        body = json.loads(reply.read())
    finally:
        conn.close()
    assert reply.status == 200, body
    assert body["node"] == node
    return str(body["credential"])


@pytest.fixture
def server(corral_home: Path) -> Iterator[Server]:
    corral = Corral(Settings.from_env())
    corral.apply(Cluster.model_validate(CLUSTER))
    options = ServeOptions(
        address="127.0.0.1", http_port=0, tftp_port=0, dhcp=False, seeder=False, agent=FAST
    )
    for started in run_in_thread(CorralServer(corral, options)):
        assert started.http is not None
        token = corral.admin_token()
        assert token
        yield Server(corral, options.server_url, token, agent_hub(started.http.app[CONTEXT]))


@pytest.fixture
def node_root(tmp_path: Path, server: Server) -> Iterator[Callable[[str], NodeRoot]]:
    """`node_root(name)`: a node's root with its /etc/corral and hardware; agents stopped after."""
    made: list[NodeRoot] = []

    def make(node: str) -> NodeRoot:
        root = tmp_path / f"root-{node}"
        hardware(root)
        write(root / "etc/corral/server", server.url + "\n")
        write(root / "etc/corral/node", node + "\n")
        write(root / "etc/corral/node.credential", credential_for(server, node) + "\n", 0o600)
        made.append(NodeRoot(root, node))
        return made[-1]

    yield make
    for root in made:
        root.stop()
