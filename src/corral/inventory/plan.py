"""Declarative apply: the plan that turns the current inventory into the file's.

A record named in the file replaces the stored one (a secret the file leaves
out is kept, since exports never carry secrets, and so are the interfaces of a
node entry that has no `interfaces` key); records missing from the file
stay unless `prune` is set. The plan is data, so `--dry-run` prints it and the
real run executes exactly what was printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, Node, PowerSettings, Profile
from corral.inventory.ops import attach_primary
from corral.inventory.validate import validate

Action = Literal["create", "update", "delete"]
KINDS = ("networks", "profiles", "nodes")


@dataclass(frozen=True)
class Change:
    action: Action
    kind: str
    name: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{sign} {self.kind[:-1]} {self.name}{detail}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    settings_changed: bool = False
    result: Inventory = field(default_factory=Inventory)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.settings_changed

    def summary(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0}
        for c in self.changes:
            out[c.action] += 1
        return out


def _keep_secret(old: PowerSettings, new: PowerSettings) -> PowerSettings:
    if new.password is None and old.password is not None:
        return new.model_copy(update={"password": old.password})
    return new


R = TypeVar("R", Profile, Node)


def _with_secrets(old: R, new: R) -> R:
    update: dict[str, object] = {"power": _keep_secret(old.power, new.power)}
    if isinstance(old, Node) and "interfaces" not in new.model_fields_set:
        # A node entry without `interfaces` keeps the addresses and MACs it has: else
        # re-applying a hand-written file would drop MACs set with `corral node set`
        # and hand the nodes new addresses.
        update["interfaces"] = old.interfaces
    return new.model_copy(update=update)


def _fields_changed(old: BaseModel, new: BaseModel) -> tuple[str, ...]:
    return tuple(f for f in type(new).model_fields if getattr(old, f) != getattr(new, f))


def plan_apply(current: Inventory, desired: Cluster, prune: bool = False) -> Plan:
    """Compute the changes and the validated resulting inventory."""
    result = current.copy()
    result.settings = desired.cluster
    plan = Plan(result=result, settings_changed=current.settings != desired.cluster)
    for kind in KINDS:
        have = getattr(current, kind)
        target = getattr(result, kind)
        wanted = {r.name: r for r in getattr(desired, kind)}
        for name, given in wanted.items():
            old = have.get(name)
            record = given if old is None or kind == "networks" else _with_secrets(old, given)
            if old is None:
                plan.changes.append(Change("create", kind, name))
            elif old != record:
                plan.changes.append(Change("update", kind, name, _fields_changed(old, record)))
            target[name] = record
        if prune:
            for name in sorted(set(have) - set(wanted)):
                plan.changes.append(Change("delete", kind, name))
                del target[name]
    touched = [
        result.nodes[c.name] for c in plan.changes if c.kind == "nodes" and c.action != "delete"
    ]
    attach_primary(result, touched, None, None)
    validate(result, [n.name for n in touched])
    return plan
