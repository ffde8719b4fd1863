"""Every inventory action a user can take, as one interface with two backends.

`LocalActions` runs against the database (the CLI on the server, and the REST
API handlers); `corral.client.RemoteActions` sends the same calls to a corral
server's REST API (`corral --server URL`). The CLI only ever talks to this
interface, so it cannot hold logic that the API lacks.
"""

from __future__ import annotations

from typing import Any, Protocol

from corral.app import Corral
from corral.inventory import ops
from corral.inventory.fileformat import public_dict
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, Network, Node, Profile
from corral.inventory.plan import Plan
from corral.inventory.types import check_mac_or_error
from corral.store.inventory import load_inventory, save_inventory
from corral.store.runtime import forget_discovered, list_discovered
from corral.store.status import events_since, status_of_nodes

Data = dict[str, Any]


class Actions(Protocol):
    def inventory(self) -> Inventory: ...
    def add_network(self, data: Data) -> Network: ...
    def set_network(self, name: str, changes: Data) -> Network: ...
    def delete_network(self, name: str) -> None: ...
    def add_profile(self, data: Data) -> Profile: ...
    def set_profile(self, name: str, changes: Data) -> Profile: ...
    def delete_profile(self, name: str) -> None: ...
    def add_nodes(
        self, names: list[str], data: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]: ...
    def set_nodes(
        self, names: list[str], changes: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]: ...
    def delete_nodes(self, names: list[str]) -> None: ...
    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan: ...
    def discovered(self) -> list[Data]: ...
    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node: ...
    def status(self, names: list[str] | None = None) -> list[Data]: ...
    def events(self, since: int = 0, limit: int = 1000) -> list[Data]: ...


class LocalActions:
    """Actions on the local database, each in one transaction."""

    def __init__(self, app: Corral) -> None:
        self.app = app

    def inventory(self) -> Inventory:
        return self.app.read()

    def add_network(self, data: Data) -> Network:
        return self.app.change(lambda inv: ops.add_network(inv, data))

    def set_network(self, name: str, changes: Data) -> Network:
        return self.app.change(lambda inv: ops.set_network(inv, name, changes))

    def delete_network(self, name: str) -> None:
        self.app.change(lambda inv: ops.delete_network(inv, name))

    def add_profile(self, data: Data) -> Profile:
        return self.app.change(lambda inv: ops.add_profile(inv, data))

    def set_profile(self, name: str, changes: Data) -> Profile:
        return self.app.change(lambda inv: ops.set_profile(inv, name, changes))

    def delete_profile(self, name: str) -> None:
        self.app.change(lambda inv: ops.delete_profile(inv, name))

    def add_nodes(
        self, names: list[str], data: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        return self.app.change(lambda inv: ops.add_nodes(inv, names, data, mac=mac, ip=ip))

    def set_nodes(
        self, names: list[str], changes: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        return self.app.change(lambda inv: ops.set_nodes(inv, names, changes, mac=mac, ip=ip))

    def delete_nodes(self, names: list[str]) -> None:
        self.app.change(lambda inv: ops.delete_nodes(inv, names))

    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        return self.app.apply(desired, prune=prune, dry_run=dry_run)

    def discovered(self) -> list[Data]:
        with self.app.store.transaction() as conn:
            return list_discovered(conn)

    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node:
        """Make a discovered machine node `name`: create it, or give it the MAC."""
        mac = check_mac_or_error(mac)

        def change(inv: Inventory) -> Node:
            if name in inv.nodes:
                changes: Data = {"profiles": profiles} if profiles else {}
                return ops.set_nodes(inv, [name], changes, mac=mac)[0]
            data: Data = {"profiles": profiles or []}
            return ops.add_nodes(inv, [name], data, mac=mac)[0]

        with self.app.store.transaction() as conn:
            before = load_inventory(conn)
            after = before.copy()
            node = change(after)
            save_inventory(conn, before, after)
            forget_discovered(conn, mac)
        return node

    def status(self, names: list[str] | None = None) -> list[Data]:
        """Each node's state (all nodes, or `names`); see `corral.states`."""
        with self.app.store.transaction() as conn:
            return status_of_nodes(conn, names)

    def events(self, since: int = 0, limit: int = 1000) -> list[Data]:
        """State-change events with an id above `since`, oldest first."""
        with self.app.store.transaction() as conn:
            return events_since(conn, since, limit)


def inventory_data(inv: Inventory) -> Data:
    """The inventory as the API sends it: the export format (no secrets)."""
    return public_dict(inv.to_cluster())
