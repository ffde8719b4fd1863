"""Node identity at rest: boot tokens, node credentials, enrollment codes.

Why this exists: the first contact of a booting machine (DHCP, TFTP, the iPXE
script) is anonymous, so a node cannot prove who it is by its address. Each
boot, the server mints a single-use **boot token** into the node's iPXE
script; the initramfs spends it once for a **node credential** that the node
then sends with every call. Both are random secrets of 256 bits; the database
keeps only their sha256 (a slow hash buys nothing against secrets that are
not guessable), so a copy of `corral.db` holds nothing a node could send.

Refusals that look like an attack (a spent or superseded token used again, a
token spent from another address) append an `alarm` event in the same
transaction, so the caller must commit before it answers 403: the result
types below are returned, not raised, for that reason.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.store import schema

BOOT_TOKEN_SECONDS = 900.0  # from the iPXE script to the initramfs, even in a boot storm
ENROLL_CODE_SECONDS = 3600.0
FORGET_AFTER = 86400.0  # spent and expired tokens are kept a day for the alarm's sake
ALARM_EVENT = "alarm"
# Enrollment codes are typed at a console: no 0/O, 1/I/L; 12 letters ~ 60 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
Data = dict[str, Any]


def new_secret() -> str:
    """A random secret that is safe on a kernel command line and in a URL."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def alarm(conn: Connection, node: str | None, now: float, reason: str, **data: Any) -> Data:
    """Record something that looks like an attack: an `alarm` event in the event log
    (`/api/v1/events`, the SSE stream), beside the state changes."""
    values = {"time": now, "node": node, "kind": ALARM_EVENT, "data": {"reason": reason, **data}}
    key = conn.execute(sa.insert(schema.events).values(**values)).inserted_primary_key
    assert key is not None
    return {"id": int(key[0]), **values}


# --- where a node may be -------------------------------------------------------------------


def node_addresses(conn: Connection, node: str, now: float) -> set[str]:
    """The addresses `node` may call from: its reserved IPs, and live leases of its MACs."""
    t = schema.interfaces
    rows = conn.execute(sa.select(t.c.ip, t.c.mac).where(t.c.node == node)).all()
    found = {r.ip for r in rows if r.ip}
    macs = [r.mac for r in rows if r.mac]
    if macs:
        leases = schema.leases
        query = sa.select(leases.c.ip).where(leases.c.mac.in_(macs), leases.c.expires > now)
        found.update(conn.execute(query).scalars())
    return found


# --- boot tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spent:
    """A boot token spent: the node it was minted for, and the credential that replaces
    the node's last one."""

    node: str
    mac: str
    credential: str


@dataclass(frozen=True)
class Refused:
    """A boot token refused; `status` is the HTTP status, `event` the alarm (if any)."""

    status: int
    reason: str
    node: str | None = None
    event: Data | None = None


def mint_boot_token(
    conn: Connection, node: str, mac: str, ip: str, now: float, ttl: float = BOOT_TOKEN_SECONDS
) -> str:
    """A new boot token for `node`, spendable once, from `ip`, for `ttl` seconds.

    Earlier live tokens of the node are superseded: one boot, one token.
    """
    t = schema.boot_tokens
    conn.execute(sa.delete(t).where(t.c.expires < now - FORGET_AFTER))
    conn.execute(
        sa.update(t)
        .where(t.c.node == node, t.c.status == "live")
        .values(status="superseded", changed=now)
    )
    token = new_secret()
    values = {"hash": hash_secret(token), "node": node, "mac": mac, "ip": ip}
    conn.execute(sa.insert(t).values(**values, issued=now, expires=now + ttl, status="live"))
    return token


def spend_boot_token(conn: Connection, token: str, ip: str, now: float) -> Spent | Refused:
    """Spend `token` from `ip`: a fresh node credential, or why not (with an alarm)."""
    t = schema.boot_tokens
    row = conn.execute(sa.select(t).where(t.c.hash == hash_secret(token))).first()
    if row is None:
        return Refused(401, "unknown boot token")
    if row.status != "live":
        why = "was already spent" if row.status == "spent" else "was superseded by a later boot"
        reason = f"boot token of {row.node} used again from {ip}: it {why}"
        event = alarm(conn, row.node, now, reason, ip=ip, mac=row.mac)
        return Refused(403, f"this boot token {why}: reboot the node", row.node, event)
    if row.ip != ip:
        reason = f"boot token of {row.node} (minted for {row.ip}) offered from {ip}"
        event = alarm(conn, row.node, now, reason, ip=ip, mac=row.mac)
        return Refused(403, f"this boot token belongs to address {row.ip}", row.node, event)
    if row.expires <= now:
        return Refused(403, "this boot token has expired: reboot the node", row.node)
    conn.execute(sa.update(t).where(t.c.hash == row.hash).values(status="spent", changed=now))
    credential = issue_credential(conn, row.node, row.mac, ip, now)
    return Spent(row.node, row.mac, credential)


# --- node credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """The node a credential belongs to, as recorded when it was issued."""

    node: str
    mac: str | None


def issue_credential(conn: Connection, node: str, mac: str | None, ip: str, now: float) -> str:
    """A new credential for `node`; the previous one stops working."""
    credential = new_secret()
    t = schema.node_credentials
    conn.execute(sa.delete(t).where(t.c.node == node))
    values = {"node": node, "hash": hash_secret(credential), "mac": mac, "ip": ip, "issued": now}
    conn.execute(sa.insert(t).values(**values))
    return credential


def credential_holder(conn: Connection, credential: str) -> Holder | None:
    """Whose credential this is (None: nobody's, or the node no longer exists)."""
    t = schema.node_credentials
    query = (
        sa.select(t.c.node, t.c.mac)
        .join(schema.nodes, schema.nodes.c.name == t.c.node)
        .where(t.c.hash == hash_secret(credential))
    )
    row = conn.execute(query).first()
    return None if row is None else Holder(row.node, row.mac)


# --- enrollment codes ----------------------------------------------------------------------


def new_code() -> str:
    letters = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(letters[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normal_code(code: str) -> str:
    """What a person typed, as it was shown: upper case, dashes every four letters."""
    letters = "".join(c for c in code.upper() if c.isalnum())
    return "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))


def create_enroll_code(
    conn: Connection, now: float, ttl: float = ENROLL_CODE_SECONDS
) -> tuple[str, float]:
    """A one-time code that lets one unknown machine adopt a free node; (code, expires)."""
    t = schema.enroll_codes
    conn.execute(sa.delete(t).where(t.c.expires < now - FORGET_AFTER))
    code = new_code()
    conn.execute(sa.insert(t).values(hash=hash_secret(code), created=now, expires=now + ttl))
    return code, now + ttl


def spend_enroll_code(conn: Connection, code: str, mac: str, now: float) -> str | None:
    """Use `code` for the machine `mac`: None if it was good, else why it was refused."""
    t = schema.enroll_codes
    row = conn.execute(sa.select(t).where(t.c.hash == hash_secret(normal_code(code)))).first()
    if row is None:
        return "unknown enrollment code"
    if row.used is not None:
        alarm(conn, None, now, f"enrollment code used again by {mac}", mac=mac)
        return "this enrollment code was already used"
    if row.expires <= now:
        return "this enrollment code has expired: create a new one"
    conn.execute(sa.update(t).where(t.c.hash == row.hash).values(used=now, used_by=mac))
    return None
