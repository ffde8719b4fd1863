"""The inventory as Ansible sees it: the dynamic-inventory script protocol.

Ansible runs an inventory script with `--list` and reads JSON: each group with
its `hosts`, and `_meta.hostvars` with every host's variables (given once here,
so Ansible never calls `--host` per node). Groups:

- one per profile, named as the profile (`compute`);
- one per tag, `<key>_<value>` (`rack_a1`, `gpu_yes`);
- `all` holds every node.

Group names keep letters, digits and underscores only (other characters become
`_`), as Ansible warns about anything else. Host variables are the node's
effective settings under `corral_*`, and `ansible_host` (its primary address)
with `ansible_user: root`. Secrets never appear: of the power settings only the
driver is given, and no key material at all.
"""

from __future__ import annotations

import re
from typing import Any

from corral.inventory.index import Inventory

Data = dict[str, Any]
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


def group_name(text: str) -> str:
    """A name Ansible takes without a warning."""
    name = _NOT_IDENT.sub("_", text)
    return f"_{name}" if name[:1].isdigit() else name


def host_vars(inv: Inventory, name: str) -> Data:
    """One node's variables: effective settings, primary address, no secrets."""
    effective = inv.effective(name)
    settings, node = effective.settings, effective.node
    primary = inv.primary_network(node)
    iface = node.interface_on(primary.name) if primary else None
    out: Data = {
        "ansible_user": "root",
        "corral_profiles": list(node.profiles),
        "corral_image": settings.image,
        "corral_boot": settings.boot,
        "corral_networks": list(settings.networks),
        "corral_tags": dict(settings.tags),
        "corral_power_driver": settings.power.driver,
        "corral_interfaces": [
            {"network": i.network, "ip": i.ip and str(i.ip), "mac": i.mac, "device": i.device}
            for i in node.interfaces
        ],
    }
    if iface is not None and iface.ip is not None:
        out["ansible_host"] = str(iface.ip)
    return out


def inventory_list(inv: Inventory) -> Data:
    """The answer to `--list`."""
    groups: dict[str, list[str]] = {}
    hostvars: Data = {}
    for name in sorted(inv.nodes):
        settings = inv.effective(name).settings
        for profile in inv.nodes[name].profiles:
            groups.setdefault(group_name(profile), []).append(name)
        for key, value in sorted(settings.tags.items()):
            groups.setdefault(group_name(f"{key}_{value}"), []).append(name)
        hostvars[name] = host_vars(inv, name)
    out: Data = {group: {"hosts": hosts} for group, hosts in sorted(groups.items())}
    out["all"] = {"hosts": sorted(inv.nodes), "children": sorted(groups)}
    out["_meta"] = {"hostvars": hostvars}
    return out
