"""What the agents do, for admins (admin token): `corral exec` jobs and the nodes' facts.

    POST /api/v1/exec           {"names": "n[1-4]" | [...], "command": "uname -n", "timeout": 60}
    GET  /api/v1/exec/{job}?wait=S   the job with every node's run; waits up to S seconds
                                     (S <= 30) for runs still queued or sent to finish
    GET  /api/v1/facts[?names=HOSTLIST]   hardware facts as templates see them

The handlers call the same `LocalActions` the CLI uses on the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from corral.actions import finished
from corral.services.http.agent import wait_param
from corral.services.http.agenthub import agent_hub
from corral.services.http.context import context_of
from corral.services.http.events import names_query
from corral.services.http.names import NAMES, Names, names_list
from corral.services.http.routing import accepts, parsed

routes = web.RouteTableDef()
MAX_REQUEST = 64 * 1024


class ExecRequest(BaseModel):
    """A shell command for the agents of some nodes."""

    model_config = ConfigDict(extra="forbid")
    names: Names = Field(description=NAMES)
    command: str = Field(description="Run with /bin/sh -c on each node")
    timeout: float = Field(60.0, description="Seconds before the command is killed (exit 124)")


@routes.post("/api/v1/exec")
@accepts(ExecRequest, limit=MAX_REQUEST)
async def start_exec(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await parsed(request, ExecRequest)
    names = names_list(body.names)
    job = await ctx.run(ctx.actions.exec_start, names, body.command, body.timeout)
    agent_hub(ctx).commands_for(run["node"] for run in job["runs"])
    return web.json_response(job, status=201)


@routes.get("/api/v1/exec/{job:[0-9]{1,18}}")
async def get_exec(request: web.Request) -> web.Response:
    ctx = context_of(request)
    job_id = int(request.match_info["job"])
    wait = wait_param(request)
    hub = agent_hub(ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        woken = hub.job_event(job_id)
        job: dict[str, Any] = await ctx.run(ctx.actions.exec_job, job_id)
        remaining = deadline - loop.time()
        if finished(job) or remaining <= 0 or hub.closing:
            return web.json_response(job)
        await hub.wait(woken, remaining)


@routes.get("/api/v1/facts")
async def get_facts(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response(await ctx.run(ctx.actions.facts, names_query(request)))
