"""Runtime facts that change what a node's next network boot does.

They are state, not configuration (so `corral export` does not carry them),
and live in the node's status row beside its state:

- `installed`: a stateful node finished installing to its disk, bootloader
  included; its network boots are answered "boot from the local disk" until
  `corral node reinstall NAME` forgets it.
- `boot_override`: `corral node service NAME` sends the node into the
  initramfs rescue environment at every boot until `--off` clears it.

Scripts' output (pre, part, post) is appended to the event log as `script`
events, bounded, so `corral status` and the event stream show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral import states
from corral.store import schema
from corral.store.runtime import upsert

Data = dict[str, Any]
SCRIPT_EVENT = "script"
OUTPUT_LIMIT = 4000  # characters of a script's output kept in its event (the end of it)
Override = Literal["service"]
OVERRIDES: tuple[Override, ...] = ("service",)


@dataclass(frozen=True)
class BootPlan:
    """What the status row says about the next boot."""

    installed: Data | None
    override: Override | None


def _data(conn: Connection, node: str) -> tuple[str, float, Data]:
    table = schema.node_status
    row = conn.execute(sa.select(table).where(table.c.node == node)).first()
    if row is None:
        return states.NEW, 0.0, {}
    return row.state, row.since, dict(row.data)


def _store(conn: Connection, node: str, key: str, value: Any) -> None:
    state, since, data = _data(conn, node)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    upsert(conn, schema.node_status, {"node": node, "state": state, "since": since, "data": data})


def boot_plan(conn: Connection, node: str) -> BootPlan:
    data = _data(conn, node)[2]
    override = data.get("boot_override")
    known = cast("Override", override) if override in OVERRIDES else None
    return BootPlan(data.get("installed"), known)


def set_installed(conn: Connection, node: str, info: Data | None) -> None:
    """Record (or with None forget) that `node` is installed on its disk."""
    _store(conn, node, "installed", info)


def set_override(conn: Connection, node: str, mode: Override | None) -> None:
    """Boot `node` in `mode` (one of OVERRIDES) until cleared with None."""
    if mode is not None and mode not in OVERRIDES:
        raise ValueError(f"unknown boot override {mode!r}")
    _store(conn, node, "boot_override", mode)


def record_script(
    conn: Connection, node: str, now: float, script: str, status: int, output: str
) -> Data:
    """Append a `script` event: which script, its exit status and the end of its output."""
    data = {"script": script, "exit": status, "output": output[-OUTPUT_LIMIT:]}
    values = {"time": now, "node": node, "kind": SCRIPT_EVENT, "data": data}
    event_id = conn.execute(sa.insert(schema.events).values(**values)).inserted_primary_key
    assert event_id is not None
    return {"id": int(event_id[0]), **values}
