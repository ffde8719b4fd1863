"""Network namespaces, bridges and veth pairs for the lab, tests and benchmarks.

Everything corral sends on a lab network stays inside namespaces that this
module made; a `Topology` remembers what it created and removes it all on
exit, even when the body raised. Uses iproute2 (`ip`), never shell strings.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from types import TracebackType


class NetnsError(RuntimeError):
    """An `ip` command failed; the message carries its stderr."""


def run_ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Run `ip ARGS` (inside `netns` when given) and return its stdout."""
    argv = ["ip", *args] if netns is None else ["ip", "-n", netns, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def ns_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs `argv` inside network namespace `netns`."""
    return ["ip", "netns", "exec", netns, *argv]


def unique_name(prefix: str) -> str:
    """A short random name: namespaces and interfaces of parallel runs never clash.

    Interface names are limited to 15 bytes, so keep `prefix` to 6 characters.
    """
    return f"{prefix}{secrets.token_hex(3)}"


def add_namespace(name: str) -> str:
    """A namespace with loopback up."""
    run_ip("netns", "add", name)
    run_ip("link", "set", "lo", "up", netns=name)
    return name


def add_bridge(netns: str, name: str, address: str | None = None, mtu: int = 1500) -> str:
    """A bridge with STP off and no forwarding delay (else first packets drop)."""
    run_ip("link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0",
           netns=netns)  # fmt: skip
    run_ip("link", "set", name, "mtu", str(mtu), "up", netns=netns)
    if address:
        run_ip("addr", "add", address, "dev", name, netns=netns)
    return name


def add_tap(netns: str, bridge: str, name: str) -> str:
    """A tap device enslaved to `bridge`, for a QEMU NIC started in `netns`."""
    run_ip("tuntap", "add", "dev", name, "mode", "tap", netns=netns)
    run_ip("link", "set", name, "master", bridge, "up", netns=netns)
    return name


def attach_port(
    client_ns: str,
    bridge_ns: str,
    bridge: str,
    *,
    ifname: str = "eth0",
    mac: str | None = None,
    address: str | None = None,
    mtu: int = 1500,
) -> str:
    """Connect `client_ns` to `bridge` in `bridge_ns` by a veth pair (`ifname` inside).

    Returns the name of the host-side end (inside `bridge_ns`).
    """
    host_end = unique_name("vh")
    peer_end = unique_name("vp")
    run_ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end)
    run_ip("link", "set", host_end, "netns", bridge_ns)
    run_ip("link", "set", peer_end, "netns", client_ns)
    run_ip("link", "set", peer_end, "name", ifname, netns=client_ns)
    if mac:
        run_ip("link", "set", ifname, "address", mac, netns=client_ns)
    run_ip("link", "set", ifname, "mtu", str(mtu), "up", netns=client_ns)
    run_ip("link", "set", host_end, "mtu", str(mtu), "master", bridge, "up", netns=bridge_ns)
    if address:
        run_ip("addr", "add", address, "dev", ifname, netns=client_ns)
    return host_end


@dataclass
class Topology:
    """A set of namespaces and links that is torn down as a whole.

    Typical use: one server namespace holding a bridge, and client namespaces
    (or QEMU taps) attached to that bridge::

        with Topology("tdhcp") as topo:
            srv = topo.namespace("srv")
            topo.bridge(srv, "br0", "10.77.0.1/24")
            cli = topo.namespace("c1")
            topo.attach(cli, srv, "br0", mac="52:54:00:00:00:01")
    """

    prefix: str = "crl"
    namespaces: list[str] = field(default_factory=list)

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def namespace(self, role: str) -> str:
        """Create a namespace with loopback up; returns its name."""
        name = f"{self.prefix}-{role}-{secrets.token_hex(2)}"
        self.namespaces.append(add_namespace(name))
        return name

    def bridge(self, netns: str, name: str, address: str | None = None, mtu: int = 1500) -> str:
        return add_bridge(netns, name, address, mtu)

    def attach(
        self,
        client_ns: str,
        bridge_ns: str,
        bridge: str,
        *,
        ifname: str = "eth0",
        mac: str | None = None,
        address: str | None = None,
        mtu: int = 1500,
    ) -> str:
        """Connect `client_ns` to `bridge` in `bridge_ns` by a veth pair.

        Returns the name of the host-side end (inside `bridge_ns`).
        """
        return attach_port(
            client_ns, bridge_ns, bridge, ifname=ifname, mac=mac, address=address, mtu=mtu
        )

    def veth(self, ns_a: str, ns_b: str, addr_a: str, addr_b: str) -> tuple[str, str]:
        """A point-to-point link between two namespaces (e.g. for a DHCP relay)."""
        a = unique_name("va")
        b = unique_name("vb")
        run_ip("link", "add", a, "type", "veth", "peer", "name", b)
        run_ip("link", "set", a, "netns", ns_a)
        run_ip("link", "set", b, "netns", ns_b)
        run_ip("addr", "add", addr_a, "dev", a, netns=ns_a)
        run_ip("addr", "add", addr_b, "dev", b, netns=ns_b)
        run_ip("link", "set", a, "up", netns=ns_a)
        run_ip("link", "set", b, "up", netns=ns_b)
        return a, b

    def tap(self, netns: str, bridge: str) -> str:
        return add_tap(netns, bridge, unique_name("tap"))

    def route(self, netns: str, dest: str, via: str) -> None:
        run_ip("route", "add", dest, "via", via, netns=netns)

    def close(self) -> None:
        """Delete every namespace this topology made (their links go with them)."""
        while self.namespaces:
            name = self.namespaces.pop()
            with contextlib.suppress(NetnsError):
                run_ip("netns", "delete", name)


def gateway_of(address: str) -> str:
    """The first host of the interface's network: the conventional server address."""
    iface = IPv4Interface(address)
    return str(next(iface.network.hosts()))


def can_create_namespaces() -> bool:
    """True where tests may build topologies (root with iproute2)."""
    if os.geteuid() != 0:
        return False
    try:
        name = unique_name("probe")
        run_ip("netns", "add", name)
        run_ip("netns", "delete", name)
    except (NetnsError, FileNotFoundError):
        return False
    return True


@contextlib.contextmanager
def topology(prefix: str) -> Iterator[Topology]:
    """`with topology("tdhcp") as topo:` — a Topology that is always cleaned up."""
    topo = Topology(prefix)
    try:
        yield topo
    finally:
        topo.close()
