"""What the agent routes share in one server process: settings and wake-ups.

Agents long-poll for commands and `corral exec` long-polls for results; both
wait on an asyncio event this hub sets when the other side acts in the same
process, and re-check the database every `recheck` seconds as well (a job
made by a local CLI or another server process sets no event here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from corral.services.http.context import CONTEXT, HttpContext
from corral.services.http.runtimecache import RuntimeCache


@dataclass(frozen=True)
class AgentSettings:
    """How often agents report, and how long the server waits before calling a node lost."""

    heartbeat_every: float = 15.0  # told to agents in every heartbeat answer
    overlay_every: float = 20.0  # runtime overlay poll: changes reach nodes within this + render
    heartbeat_timeout: float = 60.0  # no heartbeat for this long: ready -> lost
    # long polls look at the database at least this often: a job made through this
    # server wakes its agents at once; one made by a local CLI waits for the recheck
    recheck: float = 10.0

    def __post_init__(self) -> None:
        if self.heartbeat_timeout <= self.heartbeat_every:
            raise ValueError("the heartbeat timeout must be longer than the heartbeat interval")

    @classmethod
    def for_timeout(cls, timeout: float) -> AgentSettings:
        """Agents report four times within the timeout (and at least every 15 s)."""
        return cls(heartbeat_every=min(15.0, timeout / 4), heartbeat_timeout=timeout)


@dataclass
class AgentHub:
    settings: AgentSettings = field(default_factory=AgentSettings)
    runtime: RuntimeCache = field(default_factory=RuntimeCache)
    _nodes: dict[str, asyncio.Event] = field(default_factory=dict)
    _jobs: dict[int, asyncio.Event] = field(default_factory=dict)
    closing: bool = False

    def node_event(self, node: str) -> asyncio.Event:
        return self._nodes.setdefault(node, asyncio.Event())

    def job_event(self, job: int) -> asyncio.Event:
        return self._jobs.setdefault(job, asyncio.Event())

    def commands_for(self, nodes: Iterable[str]) -> None:
        """Wake the agents of `nodes`: a job was queued for them."""
        for node in nodes:
            event = self._nodes.pop(node, None)
            if event is not None:
                event.set()

    def result_for(self, job: int) -> None:
        """Wake whoever waits on `job`: a node posted its result."""
        event = self._jobs.pop(job, None)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Server shutdown: end every long poll now rather than at the shutdown timeout."""
        self.closing = True
        for event in (*self._nodes.values(), *self._jobs.values()):
            event.set()

    async def wait(self, event: asyncio.Event, remaining: float) -> None:
        """Until `event` or the re-check interval, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(remaining, self.settings.recheck))


def agent_hub(ctx: HttpContext) -> AgentHub:
    hub = ctx.extra.get("agent_hub")
    if not isinstance(hub, AgentHub):
        hub = ctx.extra["agent_hub"] = AgentHub()
    return hub


async def close_polls(app: web.Application) -> None:
    """`app.on_shutdown` hook: answer open long polls so shutdown does not wait on them."""
    agent_hub(app[CONTEXT]).close()
