"""Node states and the event log in the database, so they survive a restart.

`node_status` holds one row per node: its state, since when, and what the
node last told us (`data`: ip, mac, image, digest, bytes, peers, last error,
when each state of the current boot was entered). `events` is append-only:
every state change adds one row, and its id is the cursor SSE clients resume
from (`Last-Event-ID`). Progress reports (the same state again) update the
row but add no event, so a download's byte counter cannot flood the log.

Transitions are checked against `corral.states.TRANSITIONS` inside the same
transaction that writes them, so two reports racing cannot skip a check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral import states
from corral.inventory.errors import Conflict, NotFound
from corral.inventory.types import Data
from corral.store import schema
from corral.store.runtime import upsert

STATE_EVENT = "state"
# keys a report may carry; anything else is dropped rather than stored
DATA_KEYS = ("ip", "mac", "image", "digest", "bytes", "total", "peers", "error", "message")

# the last error is kept through the reboots that retry, until a boot gets this far
SUCCEEDED = frozenset({states.HANDOVER, states.BOOTED, states.READY})


class TransitionRefused(Conflict):
    """A node reported a state it may not enter from its current one (HTTP 409)."""


@dataclass(frozen=True)
class Recorded:
    """What `record_state` did: the node's row now, and the event it added (if any)."""

    status: Data
    event: Data | None

    @property
    def changed(self) -> bool:
        return self.event is not None


def _row(conn: Connection, node: str) -> sa.Row[Any] | None:
    table = schema.node_status
    return conn.execute(sa.select(table).where(table.c.node == node)).first()


def get_status(conn: Connection, node: str) -> Data | None:
    row = _row(conn, node)
    return None if row is None else status_dict(row.node, row.state, row.since, row.data)


def status_dict(node: str, state: str, since: float, data: Data) -> Data:
    # str(): a plain string, never a State member, so any serializer (YAML too) takes it
    return {"node": node, "state": str(state), "since": since, **data}


def _merge(old: Data, report: Data, entered: states.NodeState, changed: bool, now: float) -> Data:
    data = dict(old)
    if entered.state == states.PXE and changed:  # a new boot: forget the last one's progress
        for key in ("bytes", "total", "peers", "times", "message"):
            data.pop(key, None)
    if entered.state in SUCCEEDED and changed:  # a boot that worked clears an old failure
        data.pop("error", None)
    data.update({k: v for k, v in report.items() if k in DATA_KEYS and v is not None})
    times = dict(data.get("times") or {})
    times.setdefault(entered.state, entered.since)
    data["times"] = times
    data["seen"] = now
    return data


def record_state(
    conn: Connection, node: str, state: str, now: float, *, force: bool = False, **report: Any
) -> Recorded:
    """Record that `node` entered `state` at `now`; append an event if it changed.

    :raises TransitionRefused: the table does not allow it (unless `force`).
    """
    row = _row(conn, node)
    current = None if row is None else states.NodeState(states.State(row.state), row.since)
    result = states.transition(current, state, now)
    if isinstance(result, states.Refused):
        if not force or state not in states.STATES:  # force skips the table, not the names
            raise TransitionRefused(f"node {node}: {result.reason}")
        result = states.NodeState(states.State(state), now)
    changed = current is None or result != current
    data = _merge({} if row is None else row.data, report, result, changed, now)
    values = {"node": node, "state": result.state, "since": result.since, "data": data}
    upsert(conn, schema.node_status, values)
    status = status_dict(node, result.state, result.since, data)
    if not changed:
        return Recorded(status, None)
    was = states.NEW if current is None else current.state
    return Recorded(status, append_event(conn, node, now, was, result.state, report))


def append_event(
    conn: Connection, node: str, now: float, was: str, state: str, report: Data
) -> Data:
    data = {"from": str(was), "state": str(state)}
    data.update({k: v for k, v in report.items() if k in DATA_KEYS and v is not None})
    values = {"time": now, "node": node, "kind": STATE_EVENT, "data": data}
    event_id = conn.execute(sa.insert(schema.events).values(**values)).inserted_primary_key
    assert event_id is not None
    return {"id": int(event_id[0]), **values}


def node_names(conn: Connection) -> list[str]:
    return list(
        conn.execute(sa.select(schema.nodes.c.name).order_by(schema.nodes.c.name)).scalars()
    )


def list_status(conn: Connection, names: Iterable[str] | None = None) -> list[Data]:
    """Status of the inventory's nodes (all, or `names` in their order); `new` if never seen.

    Names that are not nodes are left out: callers that care compare lengths.
    """
    known = node_names(conn)
    members = set(known)
    wanted = known if names is None else [n for n in dict.fromkeys(names) if n in members]
    table = schema.node_status
    rows = {r.node: r for r in conn.execute(sa.select(table))} if wanted else {}
    out = []
    for name in wanted:
        row = rows.get(name)
        if row is None:
            out.append(status_dict(name, states.NEW, 0.0, {}))
        else:
            out.append(status_dict(name, row.state, row.since, row.data))
    return out


def status_of_nodes(conn: Connection, names: list[str] | None = None) -> list[Data]:
    """`list_status`, refusing names that are not nodes.

    :raises NotFound: naming every missing node.
    """
    rows = list_status(conn, names)
    if names is not None and len(rows) < len(set(names)):
        missing = sorted(set(names) - {r["node"] for r in rows})
        raise NotFound(f"no such node: {', '.join(missing)}")
    return rows


def event_dict(row: sa.Row[Any]) -> Data:
    return {"id": row.id, "time": row.time, "node": row.node, "kind": row.kind, "data": row.data}


def events_since(conn: Connection, after: int = 0, limit: int = 1000) -> list[Data]:
    """Events with an id above `after`, oldest first, at most `limit`."""
    table = schema.events
    query = sa.select(table).where(table.c.id > after).order_by(table.c.id).limit(limit)
    return [event_dict(r) for r in conn.execute(query)]


def last_event_id(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(schema.events.c.id))).scalar() or 0)


def node_events(conn: Connection, node: str, limit: int = 50) -> list[Data]:
    """The newest `limit` events of one node, newest first."""
    table = schema.events
    query = sa.select(table).where(table.c.node == node).order_by(table.c.id.desc()).limit(limit)
    return [event_dict(r) for r in conn.execute(query)]
