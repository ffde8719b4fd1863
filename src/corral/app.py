"""The application: one method per user action, each one database transaction.

The CLI and the REST API both call this, so neither holds logic the other
lacks. Changes follow one path: load the inventory, apply a pure change from
`corral.inventory.ops`, validate, write the difference, commit.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from corral.config import Settings
from corral.inventory.bulk import gc_paused
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster
from corral.inventory.plan import Plan, plan_apply
from corral.store.db import Store, open_store
from corral.store.inventory import load_inventory, save_inventory

T = TypeVar("T")


@dataclass
class Corral:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        self.settings.paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_store(self.settings.database_url)

    def read(self) -> Inventory:
        with self.store.transaction() as conn, gc_paused():
            return load_inventory(conn)

    def change(self, action: Callable[[Inventory], T]) -> T:
        """Run `action` on the inventory and save what it changed, atomically."""
        with self.store.transaction() as conn, gc_paused():
            before = load_inventory(conn)
            after = before.copy()
            result = action(after)
            save_inventory(conn, before, after)
            return result

    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        with self.store.transaction() as conn, gc_paused():
            before = load_inventory(conn)
            plan = plan_apply(before, desired, prune=prune)
            if not dry_run:
                save_inventory(conn, before, plan.result)
            return plan

    def admin_token(self, create: bool = False) -> str | None:
        """The admin API token, kept in CORRAL_HOME with mode 0600."""
        path = self.settings.paths.token
        if path.exists():
            return path.read_text().strip()
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token
