"""What the node agents tell the server, and what the server asks them to run.

Three records, all written by the server's node endpoints or by `corral exec`:

- facts: one row per node, the hardware the agent found (CPUs, memory, GPUs,
  disks, NICs); replaced whole at each report, kept when the node goes away
  from the network so templates still see it.
- heartbeats: a heartbeat is a `ready` report, so it is the `seen` time of the
  node's status row (`corral.store.status`); `mark_lost` turns every `ready`
  node whose last heartbeat is older than the timeout into `lost`.
- exec: a job is one command for a list of nodes; each node has a run row that
  goes `queued` (waiting for the agent to fetch it) → `sent` → `done`, or is
  `refused` at once when the node is not running an agent. An agent fetches
  only its own queued runs; a result is accepted only for a run sent to it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral import states
from corral.inventory.errors import Conflict, NotFound
from corral.store import schema
from corral.store.runtime import upsert
from corral.store.status import list_status, record_state

Data = dict[str, Any]
QUEUED, SENT, DONE, REFUSED = "queued", "sent", "done", "refused"
KEEP_JOBS = 7 * 86400.0  # finished jobs older than this are dropped when a new one is made
AGENT_STATES = (states.READY,)  # states in which a node runs an agent that fetches commands


# --- facts ----------------------------------------------------------------------------------


def save_facts(conn: Connection, node: str, facts: Data, now: float) -> bool:
    """Keep the node's facts; a report of the same facts changes nothing (and says so)."""
    t = schema.node_facts
    old = conn.execute(sa.select(t.c.facts).where(t.c.node == node)).scalar()
    if old == facts:
        return False
    upsert(conn, t, {"node": node, "reported": now, "facts": facts})
    return True


def all_facts(conn: Connection) -> dict[str, Data]:
    """Every node's last reported facts, by node name, with `reported` (when they changed)."""
    t = schema.node_facts
    rows = conn.execute(sa.select(t.c.node, t.c.facts, t.c.reported))
    return {r.node: {**r.facts, "reported": r.reported} for r in rows}


# --- heartbeats -----------------------------------------------------------------------------


def mark_lost(conn: Connection, timeout: float, now: float) -> list[Data]:
    """Move `ready` nodes with no heartbeat for `timeout` seconds to `lost`; their events."""
    t = schema.node_status
    rows = conn.execute(sa.select(t.c.node, t.c.data).where(t.c.state == states.READY)).all()
    events = []
    for row in rows:
        seen = float((row.data or {}).get("seen") or 0.0)
        if now - seen > timeout:
            message = f"no heartbeat for {int(now - seen)} s (timeout {int(timeout)} s)"
            recorded = record_state(conn, row.node, states.LOST, now, message=message)
            if recorded.event is not None:
                events.append(recorded.event)
    return events


# --- exec -----------------------------------------------------------------------------------


def create_job(conn: Connection, names: list[str], command: str, timeout: float, now: float) -> int:
    """A job for `names`: queued for nodes running an agent, refused for the others.

    :raises NotFound: a name is not a node.
    """
    rows = list_status(conn, names)
    if len(rows) < len(set(names)):
        missing = sorted(set(names) - {r["node"] for r in rows})
        raise NotFound(f"no such node: {', '.join(missing)}")
    jobs = schema.exec_jobs
    conn.execute(sa.delete(jobs).where(jobs.c.created < now - KEEP_JOBS))
    inserted = conn.execute(
        sa.insert(jobs).values(created=now, command=command, timeout=timeout)
    ).inserted_primary_key
    assert inserted is not None
    job = int(inserted[0])
    for row in rows:
        runs = row["state"] in AGENT_STATES
        result: Data = {}
        if not runs:
            result["error"] = (
                f"not running the corral agent (state {row['state']}): exec needs a `ready` "
                "node, booted from an image with python3 and the `agent` overlay (docs/agent.md)"
            )
        values = {"job": job, "node": row["node"], "state": QUEUED if runs else REFUSED}
        conn.execute(sa.insert(schema.exec_runs).values(**values, result=result))
    return job


def run_dict(row: sa.Row[Any]) -> Data:
    return {
        "node": row.node,
        "state": row.state,
        "exit_code": row.exit_code,
        "sent": row.sent,
        "finished": row.finished,
        **row.result,
    }


def job_runs(conn: Connection, job: int) -> Data:
    """The job and every node's run, in node order.

    :raises NotFound: no such job.
    """
    jobs, runs = schema.exec_jobs, schema.exec_runs
    head = conn.execute(sa.select(jobs).where(jobs.c.id == job)).first()
    if head is None:
        raise NotFound(f"no exec job {job}")
    rows = conn.execute(sa.select(runs).where(runs.c.job == job).order_by(runs.c.node))
    return {
        "job": job,
        "command": head.command,
        "timeout": head.timeout,
        "created": head.created,
        "runs": [run_dict(r) for r in rows],
    }


def take_commands(conn: Connection, node: str, now: float) -> list[Data]:
    """The node's queued runs, marked sent: what its agent runs next."""
    runs, jobs = schema.exec_runs, schema.exec_jobs
    query = (
        sa.select(runs.c.job, jobs.c.command, jobs.c.timeout)
        .join(jobs, jobs.c.id == runs.c.job)
        .where(runs.c.node == node, runs.c.state == QUEUED)
        .order_by(runs.c.job)
    )
    found = conn.execute(query).all()
    if not found:
        return []
    ids = [r.job for r in found]
    conn.execute(
        sa.update(runs).where(runs.c.node == node, runs.c.job.in_(ids)).values(state=SENT, sent=now)
    )
    return [{"id": r.job, "command": r.command, "timeout": r.timeout} for r in found]


def finish_run(
    conn: Connection, node: str, job: int, exit_code: int, result: Data, now: float
) -> None:
    """Record the node's result for `job`.

    :raises NotFound: the job was never sent to this node.
    :raises Conflict: a result for it was already recorded.
    """
    runs = schema.exec_runs
    where = (runs.c.job == job) & (runs.c.node == node)
    row = conn.execute(sa.select(runs.c.state).where(where)).first()
    if row is None or row.state == QUEUED:
        raise NotFound(f"exec job {job} was not sent to node {node}")
    if row.state != SENT:
        raise Conflict(f"exec job {job} on node {node} already has a result")
    values = {"state": DONE, "finished": now, "exit_code": exit_code, "result": result}
    conn.execute(sa.update(runs).where(where).values(**values))
