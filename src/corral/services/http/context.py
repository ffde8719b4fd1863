"""What every HTTP handler may use, stored once on the aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from corral.actions import LocalActions
from corral.app import Corral

T = TypeVar("T")


@dataclass
class HttpContext:
    corral: Corral
    token: str
    server_url: str
    tftp_root: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> LocalActions:
        return LocalActions(self.corral)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking database work off the event loop."""
        return await asyncio.to_thread(func, *args, **kwargs)


CONTEXT = web.AppKey("corral", HttpContext)


def context_of(request: web.Request) -> HttpContext:
    return request.app[CONTEXT]
