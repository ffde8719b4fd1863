"""Changes to an `Inventory`, one function per user action, all pure.

The application layer loads the inventory, calls one of these, validates, and
writes the result in one transaction; the CLI and the REST API share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from corral.inventory.allocate import allocate, taken_on
from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.index import Inventory
from corral.inventory.models import Interface, Network, Node, Profile
from corral.inventory.validate import validate

M = TypeVar("M", bound=BaseModel)
RENAME_HINT = (
    "To rename, add a record under the new name, move what uses the old one to it and delete "
    "the old one; or edit the output of 'corral export' and 'corral apply --prune' it"
)


def describe(exc: ValidationError, what: str) -> InventoryError:
    """One line naming the field and the bad value, from pydantic's report."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "value"
        msg = err["msg"].removeprefix("Value error, ")
        bad = err.get("input")
        shown = "" if isinstance(bad, dict | list) or bad is None else f" (got {bad!r:.80})"
        parts.append(f"{loc}: {msg}{shown}")
    return InventoryError(f"{what}: " + "; ".join(parts))


def build(model: type[M], data: Mapping[str, Any], what: str) -> M:
    if not isinstance(data, Mapping):
        raise InventoryError(f"{what}: expected a mapping of field to value")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise describe(exc, what) from None


def updated(record: M, changes: Mapping[str, Any], what: str) -> M:
    """`record` with `changes` applied and re-validated as a whole.

    A mapping given for a nested record (power settings) or a dict field (tags)
    updates only its keys; a key given as None is removed. The name is the
    record's key (profiles and interfaces refer to it), so it cannot change here.
    """
    if not isinstance(changes, Mapping):
        raise InventoryError(f"{what}: changes must be a mapping of field to value")
    name = getattr(record, "name", None)
    if name is not None and changes.get("name", name) != name:
        raise InventoryError(f"{what}: the name cannot be changed. {RENAME_HINT}")
    data = record.model_dump()
    for key, value in changes.items():
        nested = getattr(record, key, None)
        if isinstance(value, Mapping) and isinstance(nested, BaseModel | dict):
            merged = {**data[key], **value}  # nested records and tags change key by key
            data[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            data[key] = value
    return build(type(record), data, what)


# networks ---------------------------------------------------------------------


def add_network(inv: Inventory, data: Mapping[str, Any]) -> Network:
    net = build(Network, data, f"network {data.get('name')}")
    if net.name in inv.networks:
        raise Conflict(f"network {net.name} already exists: use 'corral network set'")
    inv.networks[net.name] = net
    validate(inv)
    return net


def set_network(inv: Inventory, name: str, changes: Mapping[str, Any]) -> Network:
    net = updated(get(inv.networks, name, "network"), changes, f"network {name}")
    inv.networks[name] = net
    validate(inv)
    return net


def delete_network(inv: Inventory, name: str) -> None:
    get(inv.networks, name, "network")
    users = [p.name for p in inv.profiles.values() if name in p.networks]
    users += [n.name for n in inv.nodes.values() if any(i.network == name for i in n.interfaces)]
    if users:
        raise Conflict(f"network {name} is used by {', '.join(users[:5])}: detach them first")
    del inv.networks[name]


# profiles ---------------------------------------------------------------------


def add_profile(inv: Inventory, data: Mapping[str, Any]) -> Profile:
    profile = build(Profile, data, f"profile {data.get('name')}")
    if profile.name in inv.profiles:
        raise Conflict(f"profile {profile.name} already exists: use 'corral profile set'")
    inv.profiles[profile.name] = profile
    validate(inv)
    return profile


def set_profile(inv: Inventory, name: str, changes: Mapping[str, Any]) -> Profile:
    profile = updated(get(inv.profiles, name, "profile"), changes, f"profile {name}")
    inv.profiles[name] = profile
    validate(inv)
    return profile


def delete_profile(inv: Inventory, name: str) -> None:
    get(inv.profiles, name, "profile")
    users = [n.name for n in inv.nodes.values() if name in n.profiles]
    if users:
        raise Conflict(f"profile {name} is used by nodes {', '.join(users[:5])}: change them first")
    del inv.profiles[name]


# nodes ------------------------------------------------------------------------


def add_nodes(
    inv: Inventory,
    names: list[str],
    data: Mapping[str, Any],
    mac: str | None = None,
    ip: str | None = None,
) -> list[Node]:
    """Create nodes; each gets an address on its primary network, allocated in order."""
    if (mac or ip) and len(names) != 1:
        raise InventoryError("--mac and --ip set one node: give a single node name")
    for name in names:
        if name in inv.nodes:
            raise Conflict(f"node {name} already exists: use 'corral node set'")
    if not isinstance(data, Mapping):
        raise InventoryError("node settings must be a mapping of field to value")
    nodes = [build(Node, {**data, "name": name}, f"node {name}") for name in names]
    for node in nodes:
        inv.nodes[node.name] = node
    attach_primary(inv, nodes, mac, ip)
    validate(inv, names)
    return [inv.nodes[n.name] for n in nodes]


def attach_primary(inv: Inventory, nodes: list[Node], mac: str | None, ip: str | None) -> None:
    """Give each node an interface on its primary network if it has none there."""
    by_network: dict[str, list[Node]] = {}
    for node in nodes:
        net = inv.primary_network(node)
        if net is None:
            if mac or ip:
                raise InventoryError(
                    f"node {node.name} has no network to put --mac/--ip on: "
                    "give its profile a network (corral profile set P --network NET)"
                )
            continue
        if node.interface_on(net.name) is None:
            by_network.setdefault(net.name, []).append(node)
    for net_name, members in by_network.items():
        network = inv.networks[net_name]
        if ip is not None:
            addresses: list[IPv4Address | None] = [parse_ip(ip)]
        else:
            taken = taken_on(net_name, inv.nodes.values())
            addresses = list(allocate(network, taken, len(members)))
        for node, address in zip(members, addresses, strict=True):
            data = {"network": net_name, "mac": mac, "ip": address}
            iface = build(Interface, data, f"node {node.name}: interfaces")
            inv.nodes[node.name] = node.model_copy(update={"interfaces": [*node.interfaces, iface]})


def parse_ip(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise InventoryError(f"--ip {text!r} is not an IPv4 address") from None


def set_nodes(
    inv: Inventory,
    names: list[str],
    changes: Mapping[str, Any],
    mac: str | None = None,
    ip: str | None = None,
) -> list[Node]:
    """Change settings on nodes; --mac/--ip change one node's primary interface."""
    if (mac or ip) and len(names) != 1:
        raise InventoryError("--mac and --ip set one node: give a single node name")
    out = []
    for name in names:
        node = updated(get(inv.nodes, name, "node"), changes, f"node {name}")
        inv.nodes[name] = node
        if "profiles" in changes or "networks" in changes:
            attach_primary(inv, [node], None, None)
        if mac or ip:
            _set_primary_address(inv, inv.nodes[name], mac, ip)
        out.append(inv.nodes[name])
    validate(inv, names)
    return out


def _set_primary_address(inv: Inventory, node: Node, mac: str | None, ip: str | None) -> None:
    net = inv.primary_network(node)
    if net is None:
        raise InventoryError(f"node {node.name} has no network: give it a profile with a network")
    interfaces = list(node.interfaces)
    current = node.interface_on(net.name) or Interface(network=net.name)
    changes: dict[str, Any] = {}
    if mac:
        changes["mac"] = mac
    if ip:
        changes["ip"] = parse_ip(ip)
    new = updated(current, changes, f"node {node.name}")
    if current in interfaces:
        interfaces[interfaces.index(current)] = new
    else:
        interfaces.append(new)
    inv.nodes[node.name] = node.model_copy(update={"interfaces": interfaces})


def delete_nodes(inv: Inventory, names: list[str]) -> None:
    for name in names:
        get(inv.nodes, name, "node")
    for name in names:
        del inv.nodes[name]


def adopt(inv: Inventory, mac: str, name: str, profiles: list[str] | None = None) -> Node:
    """Make the machine with `mac` node `name`: create it, or give the node that MAC."""
    if name in inv.nodes:
        changes: dict[str, Any] = {"profiles": profiles} if profiles else {}
        return set_nodes(inv, [name], changes, mac=mac)[0]
    return add_nodes(inv, [name], {"profiles": profiles or []}, mac=mac)[0]


def get(records: Mapping[str, M], name: str, kind: str) -> M:
    record = records.get(name)
    if record is None:
        raise NotFound.named(kind, name)
    return record
