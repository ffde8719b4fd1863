"""What the node reports: its state on the way from firmware to a running system.

    POST /api/v1/boot/self/state     {"state", "error"?, "message"?, "bytes"?, "total"?, "peers"?}

The caller is proven first (`node_caller`), then at most `MAX_REPORT` bytes
are read, so a host without a credential cannot make the server read or
parse anything. `/api/v1/boot/{name}/state` is the same for `name` = the caller.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import publish
from corral.services.http.nodeauth import Caller, node_caller
from corral.services.http.nodeself import packed
from corral.services.http.routing import accepts, parsed
from corral.store.inventory import load_node_view
from corral.store.status import record_state

routes = web.RouteTableDef()
Data = dict[str, Any]
MAX_REPORT = 8192
TEXT_LIMITS = {"error": 2000, "message": 200}
Count = Annotated[StrictInt, Field(ge=0, lt=2**63)]


class StateReport(BaseModel):
    """One report from a node: the state it entered, with progress or the error."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=32, description="The state entered (see corral.states)")
    bytes: Count | None = Field(None, description="Image bytes downloaded so far")
    total: Count | None = Field(None, description="Image size in bytes")
    peers: Count | None = Field(None, description="BitTorrent peers connected")
    error: str | None = Field(None, description="Why it failed (kept to 2,000 characters)")
    message: str | None = Field(None, description="A short note (kept to 200 characters)")

    @field_validator("error", "message")
    @classmethod
    def _shorten(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value[: TEXT_LIMITS[info.field_name or ""]] if value else value

    def report(self) -> Data:
        return self.model_dump(exclude={"state"})


def report_state(
    ctx: HttpContext, caller: Caller, state: str, report: Data
) -> tuple[Data, Data | None]:
    now = time.time()
    with ctx.corral.store.transaction() as conn:
        view = load_node_view(conn, caller.node)
        image = view.effective(caller.node).settings.image if view else None
        arts = packed(conn, image)
        seen: Data = {"ip": caller.ip, "mac": caller.mac, "image": image}
        seen["digest"] = arts.digest if arts else None
        recorded = record_state(conn, caller.node, state, now, **seen, **report)
    return recorded.status, recorded.event


@routes.post("/api/v1/boot/self/state")
@routes.post("/api/v1/boot/{name}/state")
@accepts(StateReport, limit=MAX_REPORT)
async def post_state(request: web.Request) -> web.Response:
    caller = await node_caller(request)
    body = await parsed(request, StateReport)
    ctx = context_of(request)
    status, event = await ctx.run(report_state, ctx, caller, body.state, body.report())
    publish(ctx, event)
    return web.json_response({**status, "changed": event is not None})
