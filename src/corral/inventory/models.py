"""The inventory records: cluster, network, profile, node.

One pydantic model per record drives the YAML/JSON file format, the REST API
schema and the CLI help (field descriptions). Records reject unknown keys.
Profiles and nodes share `NodeSettings`: a profile sets defaults, a node
overrides them; `corral.inventory.merge` turns the stack into the effective node.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    model_serializer,
    model_validator,
)

from corral.inventory.facts import Count, FactName
from corral.inventory.plain import MASK
from corral.inventory.types import CIDR, Domain, IPv4, Mac, Name

BootMode = Literal["stateless", "stateful", "service"]
# DHCP carries lease times in 32 bits; 2**31-1 s (68 years) suits clients reading them signed.
LEASE_TIME_MAX = 2**31 - 1
DNS_SERVERS_MAX = 16  # option 6 in a reply that still fits a 576-byte DHCP message


class Record(BaseModel):
    """Base of every record: strict keys, assignment validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class AddressRange(Record):
    """An inclusive range of addresses, written `10.0.0.200-10.0.0.250` on the CLI."""

    start: IPv4
    end: IPv4

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        if isinstance(data, str):
            start, sep, end = data.partition("-")
            if not sep:
                raise ValueError(f"{data!r} is not a range (expected START-END)")
            return {"start": start.strip(), "end": end.strip()}
        return data

    @model_serializer(mode="plain")
    def _to_text(self) -> str:
        return f"{self.start}-{self.end}"

    @model_validator(mode="after")
    def _ordered(self) -> AddressRange:
        if int(self.start) > int(self.end):
            raise ValueError(f"range start {self.start} is after its end {self.end}")
        return self

    @classmethod
    def parse(cls, text: str) -> AddressRange:
        return cls.model_validate(text)

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv4Address) and int(self.start) <= int(ip) <= int(self.end)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="POSIX user name")]
# Below 1000 are the image's own system users (Debian's policy): never replaced.
ClusterId = Annotated[int, Field(ge=1000, le=59999)]


class ClusterUser(Record):
    """A user who exists on every node with the same uid (jobs run as them everywhere)."""

    name: UserName
    uid: ClusterId = Field(description="User id, 1000-59999 (below 1000: the image's own)")
    gid: ClusterId | None = Field(None, description="Primary group id (default: the uid)")
    group: UserName | None = Field(None, description="Primary group name (default: the user's)")
    shell: str = Field("/bin/bash", pattern=r"^/[^:\s]*$", description="Login shell")
    home: str | None = Field(
        None, pattern=r"^/[^:\s]*$", description="Home directory (default /home/NAME)"
    )
    comment: str = Field("", pattern=r"^[^:\n]*$", max_length=200, description="GECOS field")
    ssh_authorized_keys: list[str] = Field(
        default_factory=list, description="Public keys that may log in as this user"
    )


MountPath = Annotated[str, Field(pattern=r"^/[^\s:]*$", max_length=255)]


class NfsShare(Record):
    """A directory exported over NFS and mounted on every node (home directories, software)."""

    export: MountPath = Field(description="Exported directory on the NFS server")
    mount: MountPath | None = Field(None, description="Mount point on the nodes (default: export)")
    server: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9.-]{1,253}$",
        description="NFS server address or name (default: the node tagged nfs=server)",
    )
    options: str = Field(
        "rw,hard,noatime,_netdev,x-systemd.automount",
        pattern=r"^[A-Za-z0-9_.,=:/-]{1,200}$",
        description="Mount options (fstab's fourth field)",
    )


class ClusterSettings(Record):
    """Cluster-wide settings, one per inventory."""

    name: Name = Field("corral", description="Cluster name, used in overlays and the status view")
    domain: str | None = Field(None, description="DNS domain for node names")
    ssh_authorized_keys: list[str] = Field(
        default_factory=list, description="Public keys installed for root on every node"
    )
    events_max_age_days: Annotated[float, Field(gt=0, le=36500)] = Field(
        30, description="Events older than this are pruned by corral serve"
    )
    events_max_rows: Annotated[int, Field(ge=1000, le=1_000_000_000)] = Field(
        1_000_000, description="At most this many events are kept (the newest)"
    )
    users: list[ClusterUser] = Field(
        default_factory=list, description="Users on every node with the `users` overlay"
    )
    nfs: list[NfsShare] = Field(
        default_factory=list, description="NFS shares mounted on every node (fstab overlay)"
    )

    @model_validator(mode="after")
    def _unique_users(self) -> ClusterSettings:
        for what, values in (
            ("user name", [u.name for u in self.users]),
            ("uid", [u.uid for u in self.users]),
        ):
            seen: set[object] = set()
            for value in values:
                if value in seen:
                    raise ValueError(f"two cluster users have {what} {value}")
                seen.add(value)
        return self


class Network(Record):
    """A layer-3 network that nodes attach to."""

    name: Name = Field(description="Network name")
    cidr: CIDR = Field(description="Network address, e.g. 10.77.0.0/24")
    gateway: IPv4 | None = Field(None, description="Default router handed out by DHCP")
    dns_servers: list[IPv4] = Field(
        default_factory=list,
        max_length=DNS_SERVERS_MAX,
        description="DNS servers (none: the corral server, when it answers DNS)",
    )
    ntp_servers: list[IPv4] = Field(
        default_factory=list,
        max_length=DNS_SERVERS_MAX,
        description="NTP servers, DHCP option 42 and chrony (none: the corral server)",
    )
    domain: Domain | None = Field(None, description="DNS search domain")
    mtu: Annotated[int, Field(ge=576, le=65535)] | None = Field(None, description="Link MTU")
    dynamic_range: AddressRange | None = Field(
        None, description="Addresses lent to unknown machines for discovery (START-END)"
    )
    lease_time: Annotated[int, Field(ge=60, le=LEASE_TIME_MAX)] = Field(
        3600, description="DHCP lease time, seconds"
    )

    @model_validator(mode="after")
    def _inside(self) -> Network:
        if self.gateway is not None and self.gateway not in self.cidr:
            raise ValueError(f"gateway {self.gateway} is outside the network {self.cidr}")
        if self.dynamic_range is not None:
            for end in (self.dynamic_range.start, self.dynamic_range.end):
                if end not in self.cidr:
                    raise ValueError(f"dynamic_range {self.dynamic_range} is outside {self.cidr}")
        return self


class PowerSettings(Record):
    """How to reach a node's power controller. Fields merge one by one."""

    driver: str | None = Field(
        None, description="ipmi, redfish, turingpi, clusterhat, qemu, ssh or manual"
    )
    address: str | None = Field(None, description="BMC host[:port] or base URL")
    username: str | None = Field(None, description="BMC user")
    password: SecretStr | None = Field(None, description="BMC password (never exported)")
    slot: Annotated[int, Field(ge=1)] | None = Field(None, description="Board slot (Turing Pi)")
    options: dict[str, str] = Field(default_factory=dict, description="Driver-specific settings")

    @field_serializer("password", when_used="json")
    def _hide(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        """JSON shows `***`, except for the store, which dumps with context secrets=True."""
        if value is None:
            return None
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") else MASK


class Partition(Record):
    """One partition of a stateful node's disk."""

    label: Name
    size_mib: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Size in MiB; None takes the rest of the disk"
    )
    format: Literal["ext4", "xfs", "vfat", "swap"] = "ext4"
    mount: str | None = Field(None, description="Mount point in the image, e.g. /")


class DiskLayout(Record):
    """Where a stateful node installs its image.

    `wipe` unset partitions a disk only when it is blank or was partitioned by
    corral (its partitions are named `corral-<label>`); a disk that holds
    anything else fails the install until `wipe: true` says to overwrite it.
    """

    device: str = Field(description="Block device, e.g. /dev/vda")
    wipe: bool | None = Field(
        None,
        description="true: always write a fresh partition table; false: never partition or "
        "format (reuse the partitions); unset: only a blank disk or one corral partitioned",
    )
    partitions: list[Partition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_root(self) -> DiskLayout:
        mounts = [p.mount for p in self.partitions if p.mount]
        if mounts.count("/") != 1:
            raise ValueError(f"disk {self.device}: exactly one partition must mount at /")
        if len(set(mounts)) != len(mounts):
            raise ValueError(f"disk {self.device}: two partitions mount at the same place")
        if any(p.size_mib is None for p in self.partitions[:-1]):
            raise ValueError(f"disk {self.device}: only the last partition may omit size_mib")
        for p in self.partitions:
            if p.format == "swap" and p.mount:
                raise ValueError(f"disk {self.device}: swap partition {p.label} has a mount")
            if p.mount and not p.mount.startswith("/"):
                raise ValueError(f"disk {self.device}: mount {p.mount!r} is not absolute")
        return self


SCRIPT_LIMIT = 65536


class BootScripts(Record):
    """Shell scripts the initramfs runs during a boot (Luna's pre/part/post).

    Each merges on its own: a later profile or the node replaces an earlier
    one's script, and an empty string removes an inherited script.
    """

    pre: Annotated[str, Field(max_length=SCRIPT_LIMIT)] | None = Field(
        None, description="Runs in the initramfs before the image download"
    )
    part: Annotated[str, Field(max_length=SCRIPT_LIMIT)] | None = Field(
        None,
        description="Stateful: replaces the built-in partitioning; must mount the root "
        "file system at /newroot",
    )
    post: Annotated[str, Field(max_length=SCRIPT_LIMIT)] | None = Field(
        None, description="Runs chrooted in the new root before switch_root"
    )


class NodeSettings(Record):
    """What a profile sets and a node may override. None/empty means 'not set here'."""

    image: Name | None = Field(None, description="Image the node boots")
    boot: BootMode | None = Field(None, description="stateless, stateful or service")
    kernel_args: list[str] = Field(
        default_factory=list, description="Kernel arguments (lists append along the profiles)"
    )
    overlays: list[Name] = Field(
        default_factory=list,
        description="Overlays rendered per node; a list replaces the default `system` set "
        "(name `system` in it to keep hostname, network, keys and the node agent)",
    )
    networks: list[Name] = Field(
        default_factory=list, description="Networks the node attaches to; the first is primary"
    )
    power: PowerSettings = Field(default_factory=PowerSettings)
    disk: DiskLayout | None = Field(None, description="Disk layout for stateful boot")
    scripts: BootScripts = Field(default_factory=BootScripts)
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form key/value tags")
    facts: dict[FactName, Count] = Field(
        default_factory=dict,
        description="Hardware facts (cpus, memory_mib, gpus) that win over the agent's report",
    )


class Profile(NodeSettings):
    """A named set of node settings; nodes stack several in order."""

    name: Name = Field(description="Profile name")
    description: str | None = None


class Interface(Record):
    """A node's attachment to one network."""

    network: Name = Field(description="Network name")
    mac: Mac | None = Field(None, description="Hardware address")
    ip: IPv4 | None = Field(None, description="Reserved address on that network")
    device: str | None = Field(None, description="Interface name on the node, e.g. eth0")


SWITCH_FIELDS_MOVED = (
    "switch and switch_port are no longer node fields: record the port in the switch map "
    "with `corral switch map SWITCH PORT NODE` and remove these keys"
)


class Node(NodeSettings):
    """One machine. Its effective settings are its profiles merged, then its own values."""

    name: Name = Field(description="Hostname")
    profiles: list[Name] = Field(default_factory=list, description="Profiles, merged in order")
    interfaces: list[Interface] = Field(default_factory=list)
    rpi_serial: str | None = Field(None, description="Raspberry Pi serial (netboot by serial)")
    aliases: list[Name] = Field(
        default_factory=list, description="Other DNS names of the node (CNAMEs in the cluster zone)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_switch_fields(cls, data: object) -> object:
        # `switch`/`switch_port` were node fields that nothing read; the switch map
        # (corral.discovery.switches) is where a node's port is recorded and used
        if isinstance(data, dict) and ("switch" in data or "switch_port" in data):
            raise ValueError(SWITCH_FIELDS_MOVED)
        return data

    def interface_on(self, network: str) -> Interface | None:
        return next((i for i in self.interfaces if i.network == network), None)


class Cluster(Record):
    """The whole inventory: what `corral export` writes and `corral apply` reads."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    networks: list[Network] = Field(default_factory=list)
    profiles: list[Profile] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)
