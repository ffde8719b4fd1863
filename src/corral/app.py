"""The application: one method per user action, each one database transaction.

The CLI and the REST API both call this, so neither holds logic the other
lacks. Changes follow one path: load the inventory, apply a pure change from
`corral.inventory.ops`, validate, write the difference, commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from corral.config import Paths, Settings
from corral.inventory.bulk import gc_paused
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster
from corral.inventory.plan import Plan, plan_apply
from corral.store.agent import all_facts
from corral.store.db import Store, open_store
from corral.store.files import admin_token
from corral.store.inventory import (
    change_inventory,
    load_inventory,
    read_inventory,
    save_inventory,
)
from corral.store.secretbox import SecretBox

T = TypeVar("T")


@dataclass
class Corral:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        self.settings.paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_store(self.settings.database_url, SecretBox(self.settings.secret_key_file))

    @property
    def paths(self) -> Paths:
        return self.settings.paths

    def read(self) -> Inventory:
        return read_inventory(self.store)

    def node_facts(self) -> dict[str, dict[str, Any]]:
        """Every node's facts as its agent last reported them (with `reported`, the time)."""
        with self.store.reading() as conn:
            return all_facts(conn)

    def change(self, action: Callable[[Inventory], T]) -> T:
        """Run `action` on the inventory and save what it changed, atomically."""
        with self.store.transaction() as conn:
            return change_inventory(conn, action)

    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        with self.store.transaction() as conn, gc_paused():
            before = load_inventory(conn)
            plan = plan_apply(before, desired, prune=prune)
            if not dry_run:
                save_inventory(conn, before, plan.result)
            return plan

    def admin_token(self, create: bool = False) -> str | None:
        """The admin API token, kept in CORRAL_HOME with mode 0600."""
        return admin_token(self.settings.paths.token, create)
