"""The one object a template sees: this node's settings plus the cluster around it.

Every value is copied from the inventory through an explicit allow-list into
frozen views of plain strings, numbers and tuples. Nothing else reaches a
template: no inventory records (so no BMC credentials, which live in the
node's power settings), no application, no paths. Templates see two names:

    node      NodeView     this node: name, fqdn, interfaces, disk, boot, ...
    cluster   ClusterView  cluster settings, networks, every node's addresses

Two values cost more than one node's worth of work and are computed on first
use by a template: `node.ssh_host_keys` (may run ssh-keygen once for this
node) and `cluster.known_hosts` (every node's public key, cached with the
hosts list; see `corral.overlays.cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.inventory.index import Inventory
from corral.inventory.merge import EffectiveNode
from corral.inventory.models import DiskLayout, Interface, Network, Partition
from corral.overlays.cluster import ClusterHosts, HostsCache, HostView, fqdn_of
from corral.overlays.sshkeys import HostKey, HostKeyStore


@dataclass(frozen=True)
class NetworkView:
    """A network as templates see it."""

    name: str
    cidr: str
    address: str
    prefix: int
    netmask: str
    broadcast: str
    gateway: str | None
    dns_servers: tuple[str, ...]
    domain: str | None
    mtu: int | None


@dataclass(frozen=True)
class InterfaceView:
    """One of this node's interfaces; `device` defaults to eth<index>."""

    index: int
    device: str
    mac: str | None
    ip: str | None
    address: str | None  # ip/prefix, e.g. 10.77.0.11/24
    primary: bool
    network: NetworkView


@dataclass(frozen=True)
class PartitionView:
    number: int
    label: str
    device: str  # e.g. /dev/vda2, /dev/nvme0n1p2
    size_mib: int | None
    format: str
    mount: str | None


@dataclass(frozen=True)
class DiskView:
    device: str
    partitions: tuple[PartitionView, ...]


@dataclass(frozen=True)
class NodeView:
    """This node's effective settings."""

    name: str
    fqdn: str
    domain: str | None
    image: str | None
    boot: str
    stateful: bool
    kernel_args: tuple[str, ...]
    tags: dict[str, str]
    profiles: tuple[str, ...]
    interfaces: tuple[InterfaceView, ...]
    primary: InterfaceView | None
    disk: DiskView | None
    _keys: HostKeyStore = field(repr=False, compare=False)

    @property
    def ip(self) -> str | None:
        """The address on the primary network, if reserved."""
        return self.primary.ip if self.primary else None

    @property
    def ssh_host_keys(self) -> tuple[HostKey, ...]:
        return self._keys.keys(self.name)


@dataclass(frozen=True)
class ClusterView:
    """Cluster-wide data: settings, networks and every node's names and addresses."""

    name: str
    domain: str | None
    ssh_authorized_keys: tuple[str, ...]
    networks: tuple[NetworkView, ...]
    _hosts: ClusterHosts = field(repr=False, compare=False)

    @property
    def hosts(self) -> tuple[HostView, ...]:
        return self._hosts.hosts

    @property
    def known_hosts(self) -> tuple[str, ...]:
        """ssh_known_hosts lines: `name,fqdn,ip,... ssh-ed25519 AAAA...` for every node."""
        return self._hosts.known_hosts()


@dataclass(frozen=True)
class OverlayContext:
    """What one node's templates are rendered with."""

    node: NodeView
    cluster: ClusterView

    def variables(self) -> dict[str, Any]:
        return {"node": self.node, "cluster": self.cluster}


def network_view(net: Network) -> NetworkView:
    cidr = net.cidr
    return NetworkView(
        name=net.name,
        cidr=str(cidr),
        address=str(cidr.network_address),
        prefix=cidr.prefixlen,
        netmask=str(cidr.netmask),
        broadcast=str(cidr.broadcast_address),
        gateway=None if net.gateway is None else str(net.gateway),
        dns_servers=tuple(str(d) for d in net.dns_servers),
        domain=net.domain,
        mtu=net.mtu,
    )


def interface_view(index: int, iface: Interface, net: NetworkView, primary: bool) -> InterfaceView:
    ip = None if iface.ip is None else str(iface.ip)
    return InterfaceView(
        index=index,
        device=iface.device or f"eth{index}",
        mac=iface.mac,
        ip=ip,
        address=None if ip is None else f"{ip}/{net.prefix}",
        primary=primary,
        network=net,
    )


def partition_device(disk: str, number: int) -> str:
    """`/dev/vda` + 2 → `/dev/vda2`; `/dev/nvme0n1` + 2 → `/dev/nvme0n1p2`."""
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def disk_view(disk: DiskLayout) -> DiskView:
    def part(number: int, p: Partition) -> PartitionView:
        device = partition_device(disk.device, number)
        return PartitionView(number, p.label, device, p.size_mib, p.format, p.mount)

    parts = tuple(part(i, p) for i, p in enumerate(disk.partitions, start=1))
    return DiskView(device=disk.device, partitions=parts)


def primary_index(interfaces: list[Interface], networks: list[str]) -> int | None:
    """The interface on the first effective network, else the first interface."""
    if not interfaces:
        return None
    for i, iface in enumerate(interfaces):
        if networks and iface.network == networks[0]:
            return i
    return 0


def node_view(inv: Inventory, eff: EffectiveNode, keys: HostKeyStore) -> NodeView:
    node, settings = eff.node, eff.settings
    nets = {name: network_view(net) for name, net in inv.networks.items()}
    first = primary_index(node.interfaces, settings.networks)
    interfaces = tuple(
        interface_view(i, iface, nets[iface.network], i == first)
        for i, iface in enumerate(node.interfaces)
    )
    primary = interfaces[first] if first is not None else None
    domain = inv.settings.domain or (primary.network.domain if primary else None)
    boot = settings.boot or "stateless"
    disk = settings.disk if boot == "stateful" else None
    return NodeView(
        name=node.name,
        fqdn=fqdn_of(node.name, domain),
        domain=domain,
        image=settings.image,
        boot=boot,
        stateful=disk is not None,
        kernel_args=tuple(settings.kernel_args),
        tags=dict(settings.tags),
        profiles=tuple(node.profiles),
        interfaces=interfaces,
        primary=primary,
        disk=None if disk is None else disk_view(disk),
        _keys=keys,
    )


def cluster_view(inv: Inventory, hosts: ClusterHosts) -> ClusterView:
    return ClusterView(
        name=inv.settings.name,
        domain=inv.settings.domain,
        ssh_authorized_keys=tuple(inv.settings.ssh_authorized_keys),
        networks=tuple(network_view(inv.networks[n]) for n in sorted(inv.networks)),
        _hosts=hosts,
    )


def build_context(
    inv: Inventory, node: str, keys: HostKeyStore, hosts: HostsCache
) -> OverlayContext:
    """The context for `node`: its own settings, plus the cached cluster hosts list."""
    eff = inv.effective(node)
    return OverlayContext(
        node=node_view(inv, eff, keys), cluster=cluster_view(inv, hosts.get(inv, keys))
    )
