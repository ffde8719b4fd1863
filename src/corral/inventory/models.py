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

from corral.inventory.types import CIDR, IPv4, Mac, Name

BootMode = Literal["stateless", "stateful", "service"]


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


class ClusterSettings(Record):
    """Cluster-wide settings, one per inventory."""

    name: Name = Field("corral", description="Cluster name, used in overlays and the status view")
    domain: str | None = Field(None, description="DNS domain for node names")
    ssh_authorized_keys: list[str] = Field(
        default_factory=list, description="Public keys installed for root on every node"
    )


class Network(Record):
    """A layer-3 network that nodes attach to."""

    name: Name = Field(description="Network name")
    cidr: CIDR = Field(description="Network address, e.g. 10.77.0.0/24")
    gateway: IPv4 | None = Field(None, description="Default router handed out by DHCP")
    dns_servers: list[IPv4] = Field(default_factory=list, description="DNS servers")
    domain: str | None = Field(None, description="DNS search domain")
    mtu: Annotated[int, Field(ge=576, le=65535)] | None = Field(None, description="Link MTU")
    dynamic_range: AddressRange | None = Field(
        None, description="Addresses lent to unknown machines for discovery (START-END)"
    )
    lease_time: Annotated[int, Field(ge=60)] = Field(3600, description="DHCP lease time, seconds")

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

    driver: str | None = Field(None, description="ipmi, redfish, turingpi, qemu, ssh or manual")
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
        return value.get_secret_value() if context.get("secrets") else "***"


class Partition(Record):
    """One partition of a stateful node's disk."""

    label: Name
    size_mib: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Size in MiB; None takes the rest of the disk"
    )
    format: Literal["ext4", "xfs", "vfat", "swap"] = "ext4"
    mount: str | None = Field(None, description="Mount point in the image, e.g. /")


class DiskLayout(Record):
    """Where a stateful node installs its image."""

    device: str = Field(description="Block device, e.g. /dev/vda")
    wipe: bool = Field(True, description="Write a fresh partition table")
    partitions: list[Partition] = Field(default_factory=list)


class NodeSettings(Record):
    """What a profile sets and a node may override. None/empty means 'not set here'."""

    image: Name | None = Field(None, description="Image the node boots")
    boot: BootMode | None = Field(None, description="stateless, stateful or service")
    kernel_args: list[str] = Field(
        default_factory=list, description="Kernel arguments (lists append along the profiles)"
    )
    overlays: list[Name] = Field(default_factory=list, description="Overlays rendered per node")
    networks: list[Name] = Field(
        default_factory=list, description="Networks the node attaches to; the first is primary"
    )
    power: PowerSettings = Field(default_factory=PowerSettings)
    disk: DiskLayout | None = Field(None, description="Disk layout for stateful boot")
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form key/value tags")


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


class Node(NodeSettings):
    """One machine. Its effective settings are its profiles merged, then its own values."""

    name: Name = Field(description="Hostname")
    profiles: list[Name] = Field(default_factory=list, description="Profiles, merged in order")
    interfaces: list[Interface] = Field(default_factory=list)
    switch: Name | None = Field(None, description="Switch the node is cabled to")
    switch_port: str | None = Field(None, description="Port on that switch")
    rpi_serial: str | None = Field(None, description="Raspberry Pi serial (netboot by serial)")

    def interface_on(self, network: str) -> Interface | None:
        return next((i for i in self.interfaces if i.network == network), None)


class Cluster(Record):
    """The whole inventory: what `corral export` writes and `corral apply` reads."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    networks: list[Network] = Field(default_factory=list)
    profiles: list[Profile] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)
