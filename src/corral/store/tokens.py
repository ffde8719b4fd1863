"""Named API tokens with roles, kept as hashes: a stolen database holds no usable token.

A token is 256 random bits, so one SHA-256 is enough to store it (a slow
password hash buys nothing against a secret that cannot be guessed), and a
request is matched by its hash with one indexed lookup. The secret is shown
once, when it is created.

Roles nest: `read-only` may read; `operator` may also run power actions;
`admin` may do everything. The admin token in CORRAL_HOME/admin.token is an
admin token named `admin`.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.types import check_name
from corral.store import schema

PREFIX = "corral_"
ADMIN_NAME = "admin"
USED_EVERY = 60.0  # seconds: `last_used` is a hint, not a write per request


class Role(enum.StrEnum):
    READ_ONLY = "read-only"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """True if this role may do what `needed` may (roles nest)."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InventoryError(f"unknown role {text!r}: one of {choices}") from None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(conn: Connection, name: str, role: Role, now: float) -> str:
    """Store a new token `name`; returns its secret (the only time it is seen)."""
    try:
        name = check_name(name)
    except ValueError as exc:
        raise InventoryError(f"token name: {exc}") from None
    if name == ADMIN_NAME:
        raise Conflict(f"token name {ADMIN_NAME!r} is the admin token in CORRAL_HOME")
    table = schema.api_tokens
    if conn.execute(sa.select(table.c.name).where(table.c.name == name)).first():
        raise Conflict(f"token {name} already exists (revoke it first: corral token revoke {name})")
    secret = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(table).values(name=name, role=role.value, hash=digest(secret), created=now)
    )
    return secret


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    table = schema.api_tokens
    rows = conn.execute(
        sa.select(table.c.name, table.c.role, table.c.created, table.c.last_used).order_by(
            table.c.name
        )
    )
    return [dict(row._mapping) for row in rows]


def revoke_token(conn: Connection, name: str) -> None:
    table = schema.api_tokens
    if conn.execute(sa.delete(table).where(table.c.name == name)).rowcount == 0:
        raise NotFound(f"token {name!r} does not exist (see 'corral token list')")


def find_token(conn: Connection, secret: str, now: float) -> tuple[str, Role] | None:
    """The name and role of the token whose secret is `secret`, noting when it was used."""
    if not secret.startswith(PREFIX):
        return None
    table = schema.api_tokens
    hashed = digest(secret)
    row = conn.execute(
        sa.select(table.c.name, table.c.role, table.c.last_used).where(table.c.hash == hashed)
    ).first()
    if row is None:
        return None
    if row.last_used is None or now - row.last_used > USED_EVERY:
        conn.execute(sa.update(table).where(table.c.hash == hashed).values(last_used=now))
    return row.name, Role(row.role)
