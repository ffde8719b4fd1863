"""The audit trail: every change, as an event naming who made it.

Through the REST API that is the token's name and role, with the call's
method, path and HTTP status; from the CLI on the server itself it is
`local:<user>`, method `CLI`, the action and its target as the path, and
status 0 (done) or 1 (failed). Actions share the `events` table with node
state changes (kind `api`), so `GET /api/v1/events` and its stream carry
them with the same cursor.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.store import schema

API_EVENT = "api"
MAX_PATH = 512  # a path is the client's text: keep a bounded prefix


def record_action(
    conn: Connection, now: float, token: str, role: str, method: str, path: str, status: int
) -> dict[str, Any]:
    """Append one `api` event: who (token name, role) did what (method, path), and the answer."""
    data: dict[str, Any] = {"token": token, "role": role, "method": method}
    data.update(path=path[:MAX_PATH], status=status)
    values = {"time": now, "node": None, "kind": API_EVENT, "data": data}
    key = conn.execute(sa.insert(schema.events).values(**values)).inserted_primary_key
    assert key is not None
    return {"id": int(key[0]), **values}
