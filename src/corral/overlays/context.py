"""The one object a template sees: this node's settings plus the cluster around it.

Every value is copied from the inventory through an explicit allow-list into
frozen views of plain strings, numbers and tuples. Nothing else reaches a
template: no inventory records (so no BMC credentials, which live in the
node's power settings), no application, no paths. Templates see two names:

    node      NodeView     this node: name, fqdn, interfaces, disk, boot, facts, ...
    cluster   ClusterView  cluster settings, networks, every node (`cluster.hosts`:
                           names, addresses, profiles, tags, facts), and the nodes
                           grouped `cluster.by_profile[P]` and `cluster.by_tag[K][V]`;
                           `cluster.users`; `cluster.secrets` (munge key, k3s token,
                           users' SSH keys)

Two values cost more than one node's worth of work and are computed on first
use by a template: `node.ssh_host_keys` and `node.machine_id` (may run
ssh-keygen once for this node) and `cluster.known_hosts` (every node's public key, cached with the
hosts list; see `corral.overlays.cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.inventory.index import Inventory
from corral.inventory.merge import EffectiveNode
from corral.inventory.models import ClusterUser, DiskLayout, Interface, Network, Partition
from corral.overlays.cluster import (
    ClusterHosts,
    FactsView,
    HostsCache,
    HostView,
    ReportedFacts,
    fqdn_of,
)
from corral.overlays.clustersecrets import ClusterSecrets
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
    ntp_servers: tuple[str, ...] = ()


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
    facts: FactsView
    _keys: HostKeyStore = field(repr=False, compare=False)

    @property
    def ip(self) -> str | None:
        """The address on the primary network, if reserved."""
        return self.primary.ip if self.primary else None

    @property
    def ssh_host_keys(self) -> tuple[HostKey, ...]:
        return self._keys.keys(self.name)

    @property
    def machine_id(self) -> str:
        """This node's own /etc/machine-id, kept with its host keys."""
        return self._keys.machine_id(self.name)

    @property
    def ssh_host_certificates(self) -> tuple[tuple[HostKey, str], ...]:
        """(key, certificate) for each host key, signed by the cluster's SSH CA (none without)."""
        names = [n for n in (self.fqdn, *(i.ip for i in self.interfaces)) if n]
        out = []
        for key in self.ssh_host_keys:
            cert = self._keys.certificate(key, self.name, names)
            if cert is not None:
                out.append((key, cert))
        return tuple(out)


@dataclass(frozen=True)
class UserView:
    """A cluster user as templates see it (defaults filled in)."""

    name: str
    uid: int
    gid: int
    group: str
    shell: str
    home: str
    comment: str
    ssh_authorized_keys: tuple[str, ...]


@dataclass(frozen=True)
class NfsView:
    """An NFS share as templates see it: `server` is None when no node serves it."""

    export: str
    mount: str
    server: str | None
    server_node: str | None  # the node tagged nfs=server, when that is the server
    options: str


@dataclass(frozen=True)
class ClusterView:
    """Cluster-wide data: settings, networks and every node's names and addresses."""

    name: str
    domain: str | None
    ssh_authorized_keys: tuple[str, ...]
    admin_ssh_keys: tuple[str, ...]  # the admin's key from CORRAL_HOME (corral init)
    networks: tuple[NetworkView, ...]
    users: tuple[UserView, ...]
    nfs: tuple[NfsView, ...]
    _hosts: ClusterHosts = field(repr=False, compare=False)
    _secrets: ClusterSecrets = field(repr=False, compare=False)

    @property
    def secrets(self) -> ClusterSecrets:
        """The cluster's own secrets (`munge_key`, `k3s_token`, `user_key(name)`), made once."""
        return self._secrets

    @property
    def hosts(self) -> tuple[HostView, ...]:
        return self._hosts.hosts

    @property
    def by_profile(self) -> dict[str, tuple[HostView, ...]]:
        """Profile name -> its nodes (a node with two profiles is in both)."""
        return self._hosts.by_profile

    @property
    def by_tag(self) -> dict[str, dict[str, tuple[HostView, ...]]]:
        """Tag key -> value -> its nodes: `cluster.by_tag.role.controller`."""
        return self._hosts.by_tag

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
        ntp_servers=tuple(str(t) for t in net.ntp_servers),
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


def node_view(inv: Inventory, eff: EffectiveNode, keys: HostKeyStore, facts: FactsView) -> NodeView:
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
        facts=facts,
        _keys=keys,
    )


def user_view(user: ClusterUser) -> UserView:
    return UserView(
        name=user.name,
        uid=user.uid,
        gid=user.uid if user.gid is None else user.gid,
        group=user.group or user.name,
        shell=user.shell,
        home=user.home or f"/home/{user.name}",
        comment=user.comment,
        ssh_authorized_keys=tuple(user.ssh_authorized_keys),
    )


def nfs_views(inv: Inventory, hosts: ClusterHosts) -> tuple[NfsView, ...]:
    """The shares with their server: set, or the node tagged nfs=server (by address)."""
    tagged = hosts.by_tag.get("nfs", {}).get("server", ())
    out = []
    for share in inv.settings.nfs:
        node = tagged[0] if share.server is None and tagged else None
        server = share.server or (node.ip or node.fqdn if node else None)
        out.append(
            NfsView(
                export=share.export,
                mount=share.mount or share.export,
                server=server,
                server_node=node.name if node else None,
                options=share.options,
            )
        )
    return tuple(out)


def cluster_view(
    inv: Inventory,
    hosts: ClusterHosts,
    secrets: ClusterSecrets,
    admin_keys: tuple[str, ...] = (),
) -> ClusterView:
    return ClusterView(
        name=inv.settings.name,
        domain=inv.settings.domain,
        ssh_authorized_keys=tuple(inv.settings.ssh_authorized_keys),
        admin_ssh_keys=admin_keys,
        networks=tuple(network_view(inv.networks[n]) for n in sorted(inv.networks)),
        users=tuple(user_view(u) for u in inv.settings.users),
        nfs=nfs_views(inv, hosts),
        _hosts=hosts,
        _secrets=secrets,
    )


def build_context(
    inv: Inventory,
    node: str,
    keys: HostKeyStore,
    hosts: HostsCache,
    reported: ReportedFacts | None = None,
    admin_keys: tuple[str, ...] = (),
    secrets: ClusterSecrets | None = None,
) -> OverlayContext:
    """The context for `node`: its own settings, plus the cached cluster hosts list."""
    eff = inv.effective(node)
    cluster = hosts.get(inv, keys, reported)
    facts = cluster.by_name[node].facts
    vault = secrets or ClusterSecrets(keys.root.parent / "secrets", inv.settings.name)
    view = cluster_view(inv, cluster, vault, admin_keys)
    return OverlayContext(node=node_view(inv, eff, keys, facts), cluster=view)
