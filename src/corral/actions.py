"""Every inventory action a user can take, as one interface with two backends.

`LocalActions` runs against the database (the CLI on the server, and the REST
API handlers); `corral.client.RemoteActions` sends the same calls to a corral
server's REST API (`corral --server URL`). The CLI only ever talks to this
interface, so it cannot hold logic that the API lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from corral.app import Corral
from corral.inventory import ops
from corral.inventory.errors import Conflict, InventoryError
from corral.inventory.fileformat import public_dict
from corral.inventory.hostlists import compress
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, Network, Node, Profile
from corral.inventory.plan import Plan
from corral.inventory.types import Data
from corral.store import tokens
from corral.store.agent import DONE, REFUSED, create_job, job_runs
from corral.store.audit import record_action
from corral.store.bootplan import set_installed, set_override
from corral.store.credentials import create_enroll_code
from corral.store.db import StoreError
from corral.store.events import EventQuery, find_events
from corral.store.inventory import adopt
from corral.store.runtime import list_discovered
from corral.store.status import events_since, status_of_nodes

if TYPE_CHECKING:  # imported where used: `corral node list` needs none of them (start-up time)
    from corral.discovery.switches import Switch
    from corral.images.records import Image
    from corral.power.run import PowerResult


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
    def nodes(self, names: list[str] | None = None, effective: bool = False) -> list[Data]: ...
    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan: ...
    def discovered(self) -> list[Data]: ...
    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node: ...
    def status(self, names: list[str] | None = None) -> list[Data]: ...
    def events(self, since: int = 0, limit: int = 1000) -> list[Data]: ...
    def find_events(
        self,
        after: int = 0,
        limit: int = 1000,
        nodes: list[str] | None = None,
        kinds: list[str] | None = None,
        start: float | None = None,
        newest: bool = False,
    ) -> list[Data]: ...
    def power(self, names: list[str], action: str, concurrency: int) -> list[PowerResult]: ...
    def switches(self) -> list[Switch]: ...
    def add_switch(self, switch: Switch) -> Switch: ...
    def map_switch(self, name: str, ports: str, nodes: str) -> Switch: ...
    def delete_switch(self, name: str) -> None: ...
    def images(self) -> list[Image]: ...
    def create_token(self, name: str, role: str) -> str: ...
    def tokens(self) -> list[Data]: ...
    def revoke_token(self, name: str) -> None: ...
    def exec_start(self, names: list[str], command: str, timeout: float) -> Data: ...
    def exec_job(self, job: int, wait: float = 0.0) -> Data: ...
    def facts(self, names: list[str] | None = None) -> list[Data]: ...
    def enroll_code(self, minutes: int = 60) -> Data: ...
    def reinstall(self, names: list[str]) -> list[str]: ...
    def service_mode(self, names: list[str], on: bool = True) -> list[str]: ...


P = ParamSpec("P")
T = TypeVar("T")


def audited(
    func: Callable[Concatenate[LocalActions, P], T],
) -> Callable[Concatenate[LocalActions, P], T]:
    """Record a change made on this machine as an `api` event naming its user.

    Changes through the REST API are recorded by the server with the token's
    name (`services/http/auth.py`); this covers the CLI run on the server itself.
    """

    @functools.wraps(func)
    def wrapper(self: LocalActions, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.actor is None:
            return func(self, *args, **kwargs)
        what = f"{func.__name__} {_brief(args[0])}" if args else func.__name__
        try:
            result = func(self, *args, **kwargs)
        except Exception:
            # the action's own error is the one to report, not a failure to record it
            with contextlib.suppress(StoreError, SQLAlchemyError):
                self.record(what, 1)
            raise
        self.record(what, 0)
        return result

    return wrapper


def _brief(value: object) -> str:
    """What an action was given, as its audit event names it: a name, names, or a kind."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if len(value) > 64:  # compressing 10,000 names costs half a second
            return f"{len(value)} names, {value[0]} to {value[-1]}"
        return compress([str(v) for v in value]) if value else ""
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return name if isinstance(name, str) else type(value).__name__


class LocalActions:
    """Actions on the local database, each in one transaction.

    `actor` names who runs them (the CLI passes `local:<user>`): each change is
    then recorded as an event, as the server records the token of an API call.
    """

    def __init__(self, app: Corral, actor: str | None = None) -> None:
        self.app = app
        self.actor = actor

    def record(self, what: str, status: int) -> None:
        """One `api` event: `actor` did `what` (status 0: done, 1: refused or failed)."""
        with self.app.store.transaction() as conn:
            record_action(conn, time.time(), self.actor or "local", "local", "CLI", what, status)

    def inventory(self) -> Inventory:
        return self.app.read()

    @audited
    def add_network(self, data: Data) -> Network:
        return self.app.change(lambda inv: ops.add_network(inv, data))

    @audited
    def set_network(self, name: str, changes: Data) -> Network:
        return self.app.change(lambda inv: ops.set_network(inv, name, changes))

    @audited
    def delete_network(self, name: str) -> None:
        self.app.change(lambda inv: ops.delete_network(inv, name))

    @audited
    def add_profile(self, data: Data) -> Profile:
        return self.app.change(lambda inv: ops.add_profile(inv, data))

    @audited
    def set_profile(self, name: str, changes: Data) -> Profile:
        return self.app.change(lambda inv: ops.set_profile(inv, name, changes))

    @audited
    def delete_profile(self, name: str) -> None:
        self.app.change(lambda inv: ops.delete_profile(inv, name))

    @audited
    def add_nodes(
        self, names: list[str], data: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        return self.app.change(lambda inv: ops.add_nodes(inv, names, data, mac=mac, ip=ip))

    @audited
    def set_nodes(
        self, names: list[str], changes: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        return self.app.change(lambda inv: ops.set_nodes(inv, names, changes, mac=mac, ip=ip))

    @audited
    def delete_nodes(self, names: list[str]) -> None:
        self.app.change(lambda inv: ops.delete_nodes(inv, names))

    def nodes(self, names: list[str] | None = None, effective: bool = False) -> list[Data]:
        """Node records as the API sends them: all, or `names` in that order.

        Plain data, so that `corral node list` prints the same thing from both
        backends, and the REST client needs no models to read it.
        :raises NotFound: a name is not a node.
        """
        inv = self.app.read()
        return [node_data(inv, name, effective) for name in (names or sorted(inv.nodes))]

    @audited
    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        return self.app.apply(desired, prune=prune, dry_run=dry_run)

    def discovered(self) -> list[Data]:
        with self.app.store.reading() as conn:
            return list_discovered(conn)

    @audited
    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node:
        """Make a discovered machine node `name`: create it, or give it the MAC."""
        with self.app.store.transaction() as conn:
            return adopt(conn, mac, name, profiles)

    def status(self, names: list[str] | None = None) -> list[Data]:
        """Each node's state (all nodes, or `names`); see `corral.states`."""
        with self.app.store.reading() as conn:
            return status_of_nodes(conn, names)

    def events(self, since: int = 0, limit: int = 1000) -> list[Data]:
        """State-change events with an id above `since`, oldest first."""
        with self.app.store.reading() as conn:
            return events_since(conn, since, limit)

    def find_events(
        self,
        after: int = 0,
        limit: int = 1000,
        nodes: list[str] | None = None,
        kinds: list[str] | None = None,
        start: float | None = None,
        newest: bool = False,
    ) -> list[Data]:
        """Events matching the filters, oldest first (`newest`: the last `limit` of them)."""
        query = EventQuery(after, limit, nodes, kinds, start, newest)
        with self.app.store.reading() as conn:
            return find_events(conn, query)

    def power(self, names: list[str], action: str, concurrency: int) -> list[PowerResult]:
        """Run a power action on nodes `names` here, with their BMC settings from the store."""
        from corral.power.run import Action, run_power, targets_for

        try:
            what = Action(action)
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise InventoryError(f"unknown power action {action!r}: one of {known}") from None
        targets = targets_for(self.app.read(), names)
        return asyncio.run(run_power(targets, what, concurrency))

    def switches(self) -> list[Switch]:
        from corral.discovery import switches as sw

        with self.app.store.reading() as conn:
            return sorted(sw.load_switches(conn).values(), key=lambda s: s.name)

    @audited
    def add_switch(self, switch: Switch) -> Switch:
        from corral.discovery import switches as sw

        with self.app.store.transaction() as conn:
            return sw.add_switch(conn, switch)

    @audited
    def map_switch(self, name: str, ports: str, nodes: str) -> Switch:
        """Map `ports` of switch `name` one to one onto `nodes` (hostlists)."""
        from corral.discovery import switches as sw

        with self.app.store.transaction() as conn:
            return sw.save_switch(conn, sw.map_ports(sw.get_switch(conn, name), ports, nodes))

    @audited
    def delete_switch(self, name: str) -> None:
        from corral.discovery import switches as sw

        with self.app.store.transaction() as conn:
            sw.delete_switch(conn, name)

    def images(self) -> list[Image]:
        from corral.images import catalog

        with self.app.store.reading() as conn:
            return catalog.all_images(conn)

    @audited
    def create_token(self, name: str, role: str) -> str:
        """A new API token `name` with `role`; the secret is shown once, only its hash kept."""
        with self.app.store.transaction() as conn:
            return tokens.create_token(conn, name, tokens.parse_role(role), time.time())

    def tokens(self) -> list[Data]:
        """Every API token: name, role, when created and last used; never the secret."""
        with self.app.store.reading() as conn:
            return tokens.list_tokens(conn)

    @audited
    def revoke_token(self, name: str) -> None:
        with self.app.store.transaction() as conn:
            tokens.revoke_token(conn, name)

    @audited
    def enroll_code(self, minutes: int = 60) -> Data:
        """A one-time code for adopting a machine at its console; only its hash is kept."""
        with self.app.store.transaction() as conn:
            code, expires = create_enroll_code(conn, time.time(), minutes * 60.0)
        return {"code": code, "expires": expires}

    def facts(self, names: list[str] | None = None) -> list[Data]:
        """Each node's hardware facts as templates see them: the inventory's over the agent's.

        :raises NotFound: a name is not a node.
        """
        from corral.overlays.cluster import effective_facts

        inv, reported = self.app.read(), self.app.node_facts()
        for name in names or []:
            ops.get(inv.nodes, name, "node")
        return [
            {"node": name, **asdict(effective_facts(inv, inv.nodes[name], reported.get(name)))}
            for name in (names or sorted(inv.nodes))
        ]

    def exec_start(self, names: list[str], command: str, timeout: float) -> Data:
        """Queue `command` for the agents of `names`; nodes without one are refused at once."""
        command_checked(command, timeout)
        with self.app.store.transaction() as conn:
            job = create_job(conn, names, command, timeout, time.time())
            return job_runs(conn, job)

    def exec_job(self, job: int, wait: float = 0.0) -> Data:
        """The job's runs; with `wait`, polls until every run finished or `wait` passed."""
        deadline = time.monotonic() + wait
        while True:
            with self.app.store.reading() as conn:
                found = job_runs(conn, job)
            if finished(found) or time.monotonic() >= deadline:
                return found
            time.sleep(min(EXEC_POLL, max(deadline - time.monotonic(), 0.0)))

    @audited
    def reinstall(self, names: list[str]) -> list[str]:
        """Forget that stateful `names` are installed: their next network boot reinstalls."""
        inv = self.app.read()
        for name in names:
            boot = inv.effective(ops.get(inv.nodes, name, "node").name).settings.boot
            if boot != "stateful":
                raise Conflict(
                    f"node {name} is not stateful (boot: {boot or 'stateless'}): "
                    "it reinstalls at every boot already"
                )
        with self.app.store.transaction() as conn:
            for name in names:
                set_installed(conn, name, None)
        return names

    @audited
    def service_mode(self, names: list[str], on: bool = True) -> list[str]:
        """Boot `names` into the rescue environment from now on (or, `on` False, no more)."""
        inv = self.app.read()
        for name in names:
            ops.get(inv.nodes, name, "node")
        with self.app.store.transaction() as conn:
            for name in names:
                set_override(conn, name, "service" if on else None)
        return names


EXEC_POLL = 0.5  # seconds between database looks while a local `corral exec` waits
MAX_COMMAND = 16 * 1024
MAX_EXEC_TIMEOUT = 86400.0


def command_checked(command: str, timeout: float) -> None:
    """:raises InventoryError: an empty or huge command, or a timeout out of range."""
    if not command.strip():
        raise InventoryError("exec needs a command")
    if len(command) > MAX_COMMAND:
        raise InventoryError(f"the command is longer than {MAX_COMMAND} characters")
    if not 0 < timeout <= MAX_EXEC_TIMEOUT:
        raise InventoryError(f"the timeout must be between 0 and {MAX_EXEC_TIMEOUT:g} seconds")


def finished(job: Data) -> bool:
    """Whether every node of an exec job has a result (or was refused)."""
    return all(run["state"] in (DONE, REFUSED) for run in job["runs"])


def node_data(inv: Inventory, name: str, effective: bool = False) -> Data:
    """Node `name` as the API sends it (defaults left out, no secrets); with
    `effective`, its settings merged along its profiles under `effective`.

    :raises NotFound: no node is called `name`.
    """
    data = ops.get(inv.nodes, name, "node").model_dump(mode="json", exclude_defaults=True)
    if effective:
        settings = inv.effective(name).settings
        data["effective"] = settings.model_dump(mode="json", exclude_defaults=True)
    return data


def inventory_data(inv: Inventory) -> Data:
    """The inventory as the API sends it: the export format (no secrets)."""
    return public_dict(inv.to_cluster())
