"""The node list from a SQLite store, read with the standard library's sqlite3.

Why: `corral node list` on the server's own database has a 0.2 s start-up
budget, and importing SQLAlchemy alone takes 0.12-0.4 s of CPU here (the
pydantic models another 0.1-0.25 s); sqlite3 takes 0.01 s. The records are
stored as their models' JSON dumps (`store.inventory.spec_of`), so the API's
form of a node (`actions.node_data`: defaults left out, the password shown as
`***`) is the stored document with its password masked: no validation needed.

This reader answers only what it can answer exactly, and says None otherwise,
so the caller takes the full path (`Actions.nodes`): a URL that is not a plain
`sqlite:///FILE` (PostgreSQL, or a driver named in it), a database that does
not exist yet, or one at another schema revision than HEAD_REVISION (the full
path migrates it first). tests/cli/test_node_list_paths.py compares both paths'
output on the same database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral.inventory.errors import NotFound
from corral.inventory.plain import MASK, merge_scalars
from corral.store.migrations import HEAD_REVISION
from corral.store.secretbox import SecretBox

PLAIN_SQLITE = "sqlite:///"
BUSY_TIMEOUT_S = 10.0  # as the SQLAlchemy engine's busy_timeout


def with_password(spec: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """`spec` with its BMC password passed through `change` (seal, open or mask)."""
    power = spec.get("power")
    if isinstance(power, dict) and isinstance(power.get("password"), str):
        spec = {**spec, "power": {**power, "password": change(power["password"])}}
    return spec


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain `sqlite:///FILE` URL; None for any other URL."""
    if not url.startswith(PLAIN_SQLITE) or "?" in url:
        return None
    path = url.removeprefix(PLAIN_SQLITE)
    return Path(path) if path and path != ":memory:" else None


def read_node_list(
    url: str,
    names: list[str] | None = None,
    effective: bool = False,
    secrets: SecretBox | None = None,
) -> list[dict[str, Any]] | None:
    """Nodes as the API sends them (all by name, or `names` in that order), or
    None when this reader cannot answer for this URL (see the module docstring).

    With `effective`, each carries under `effective` its single-valued effective
    settings (image, boot, disk: what the node table shows), not the whole merge.
    The list shows no secret, but the full path opens every stored one, so a lost
    or wrong key fails it: with `secrets`, one sealed password is opened to fail
    the same way.
    :raises NotFound: a name is not a node.
    :raises StoreError: `secrets` does not open the stored passwords.
    """
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S
        )
    except sqlite3.Error:
        return None
    try:
        conn.isolation_level = None
        conn.execute("PRAGMA query_only=1")  # as Store.reading: this path never writes
        conn.execute("BEGIN")  # one snapshot for the queries below; WAL: no lock taken
        return _read(conn, names, effective, secrets)
    except sqlite3.Error:
        return None  # e.g. a table this revision lacks: the full path says what is wrong
    finally:
        conn.close()


def _read(
    conn: sqlite3.Connection, names: list[str] | None, effective: bool, secrets: SecretBox | None
) -> list[dict[str, Any]] | None:
    if _revision(conn) != HEAD_REVISION:
        return None
    specs = {name: json.loads(spec) for name, spec in conn.execute("SELECT name, spec FROM nodes")}
    rows = conn.execute("SELECT name, spec FROM profiles")
    profiles = {name: json.loads(spec) for name, spec in rows}
    if secrets is not None:
        _check_key(secrets, [*profiles.values(), *specs.values()])
    out: list[dict[str, Any]] = []
    for name in names or sorted(specs):
        spec = specs.get(name)
        if spec is None:
            raise NotFound.named("node", name)
        data = with_password(spec, lambda _sealed: MASK)
        if effective:
            stacked = spec.get("profiles", [])
            if not all(p in profiles for p in stacked):
                return None  # a dangling profile: the full path names it in its error
            data["effective"] = merge_scalars([*(profiles[p] for p in stacked), spec])
        out.append(data)
    return out


def _check_key(secrets: SecretBox, specs: list[dict[str, Any]]) -> None:
    """Open the first sealed password, if there is one (StoreError if the key fails)."""
    for spec in specs:
        power = spec.get("power")
        password = power.get("password") if isinstance(power, dict) else None
        if isinstance(password, str) and SecretBox.is_sealed(password):
            secrets.open(password)
            return


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None
