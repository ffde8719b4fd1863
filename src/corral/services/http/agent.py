"""The node agent's endpoints: heartbeat and facts, runtime overlays, `corral exec` commands.

Every route identifies the calling node only through
`corral.services.http.nodeauth.node_caller` (the node credential), and bounds
its body before reading it.

    POST /api/v1/boot/self/heartbeat        {"state": "booted"|"ready", "facts": {...}}
    GET  /api/v1/boot/self/runtime          runtime overlays as JSON; ETag / If-None-Match
    GET  /api/v1/boot/self/commands?wait=S  commands queued for this node (long poll, S <= 30)
    POST /api/v1/boot/self/commands/{job}   {"exit_code", "stdout", "stderr", "timed_out", ...}

The heartbeat answer tells the agent how often to report and to poll
(`AgentSettings`), so one server setting governs both sides.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from corral.inventory.errors import InventoryError
from corral.inventory.facts import NodeFacts
from corral.overlays.runtime import RuntimeDocument
from corral.services.http.agenthub import agent_hub
from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import publish
from corral.services.http.nodeauth import Caller, node_caller
from corral.services.http.routing import accepts, parsed
from corral.store.agent import finish_run, save_facts, take_commands
from corral.store.status import record_state

routes = web.RouteTableDef()
Data = dict[str, Any]
MAX_HEARTBEAT = 256 * 1024
MAX_RESULT = 1024 * 1024  # two 64 KiB output tails, JSON-escaped, with room to spare
MAX_OUTPUT = 64 * 1024  # characters of stdout and of stderr kept per node
MAX_WAIT = 30.0


# --- bodies ---------------------------------------------------------------------------------


class Heartbeat(BaseModel):
    """A heartbeat: `booted` once per boot, then `ready` with the node's hardware."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["booted", "ready"]
    facts: NodeFacts | None = None


class CommandResult(BaseModel):
    """How a `corral exec` command ended on this node; output is kept to its last 64 KiB."""

    model_config = ConfigDict(extra="forbid")
    exit_code: int = Field(ge=0, le=255)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    truncated: bool = False
    seconds: float | None = Field(None, ge=0)


# --- heartbeat ------------------------------------------------------------------------------


def record_heartbeat(ctx: HttpContext, caller: Caller, beat: Heartbeat) -> tuple[Data, Data | None]:
    now = time.time()
    with ctx.corral.store.transaction() as conn:
        if beat.facts is not None:
            facts = beat.facts.model_dump(mode="json", exclude_none=True)
            save_facts(conn, caller.node, facts, now)
        recorded = record_state(conn, caller.node, beat.state, now, ip=caller.ip, mac=caller.mac)
    return recorded.status, recorded.event


@routes.post("/api/v1/boot/self/heartbeat")
@accepts(Heartbeat, limit=MAX_HEARTBEAT)
async def heartbeat(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await node_caller(request)  # a stranger's body is not read
    beat = await parsed(request, Heartbeat)
    status, event = await ctx.run(record_heartbeat, ctx, caller, beat)
    publish(ctx, event)
    settings = agent_hub(ctx).settings
    return web.json_response(
        {
            "node": caller.node,
            "state": status["state"],
            "heartbeat_every": settings.heartbeat_every,
            "overlay_every": settings.overlay_every,
            # every live server's API URL, this one first: where the agent goes when we fail
            "servers": ctx.api_bases,
        }
    )


# --- runtime overlays -----------------------------------------------------------------------


def runtime_of(ctx: HttpContext, node: str, etag: str) -> RuntimeDocument | None:
    """The node's document, or None when `etag` is still current (no render needed)."""
    cache = agent_hub(ctx).runtime
    if etag and cache.unchanged(ctx.corral, node, etag):
        return None
    return cache.document(ctx.corral, node)


@routes.get("/api/v1/boot/self/runtime")
async def runtime(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await node_caller(request)
    etag = request.headers.get("If-None-Match", "").strip()
    document = await ctx.run(runtime_of, ctx, caller.node, etag)
    if document is None or document.etag == etag:
        headers = {"ETag": etag, "Cache-Control": "no-store"}
        return web.Response(status=304, headers=headers)
    headers = {"ETag": document.etag, "Cache-Control": "no-store"}
    return web.Response(body=document.body, content_type="application/json", headers=headers)


# --- exec -----------------------------------------------------------------------------------


def wait_param(request: web.Request) -> float:
    text = request.query.get("wait", "0")
    try:
        wait = float(text)
    except ValueError:
        raise InventoryError(f"'wait' must be a number of seconds, not {text!r}") from None
    if not 0 <= wait <= MAX_WAIT:
        raise InventoryError(f"'wait' must be between 0 and {MAX_WAIT:g} seconds")
    return wait


def take(ctx: HttpContext, node: str) -> list[Data]:
    with ctx.corral.store.transaction() as conn:
        return take_commands(conn, node, time.time())


@routes.get("/api/v1/boot/self/commands")
async def commands(request: web.Request) -> web.Response:
    ctx = context_of(request)
    wait = wait_param(request)
    caller = await node_caller(request)
    hub = agent_hub(ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        woken = hub.node_event(caller.node)  # before the check, so no job slips between
        if gone(request) or hub.closing:  # a command taken now would be lost with the agent
            return web.json_response({"commands": []})
        found = await ctx.run(take, ctx, caller.node)
        remaining = deadline - loop.time()
        if found or remaining <= 0:
            return web.json_response({"commands": found})
        await hub.wait(woken, remaining)


def gone(request: web.Request) -> bool:
    """Whether the client hung up (aiohttp does not cancel the handler when it does)."""
    return request.transport is None or request.transport.is_closing()


def save_result(ctx: HttpContext, node: str, job: int, result: CommandResult) -> None:
    kept = result.model_dump(exclude={"exit_code"})
    for key in ("stdout", "stderr"):
        kept[key] = kept[key][-MAX_OUTPUT:]
    with ctx.corral.store.transaction() as conn:
        finish_run(conn, node, job, result.exit_code, kept, time.time())


@routes.post("/api/v1/boot/self/commands/{job:[0-9]{1,18}}")
@accepts(CommandResult, limit=MAX_RESULT)
async def command_result(request: web.Request) -> web.Response:
    ctx = context_of(request)
    job = int(request.match_info["job"])
    caller = await node_caller(request)
    result = await parsed(request, CommandResult)
    await ctx.run(save_result, ctx, caller.node, job, result)
    agent_hub(ctx).result_for(job)
    return web.json_response({"job": job, "node": caller.node, "recorded": True})
