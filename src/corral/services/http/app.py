"""The aiohttp application and its runner, for `corral serve` and tests."""

from __future__ import annotations

from aiohttp import web

from corral.services.http import (
    api,
    artifacts,
    auth,
    boot,
    errors,
    events,
    nodeboot,
    openapi,
    swarm,
)
from corral.services.http.context import CONTEXT, HttpContext

MAX_BODY = 256 * 1024 * 1024  # a 10,000-node apply fits comfortably


def make_app(
    ctx: HttpContext, extra_routes: list[web.RouteTableDef] | None = None
) -> web.Application:
    app = web.Application(
        middlewares=[errors.error_middleware, auth.auth_middleware], client_max_size=MAX_BODY
    )
    app[CONTEXT] = ctx
    tables = (api.routes, boot.routes, artifacts.routes, openapi.routes, swarm.routes)
    for table in (*tables, nodeboot.routes, events.routes, *(extra_routes or [])):
        app.router.add_routes(table)
    app.on_shutdown.append(events.close_streams)
    return app


class HttpServer:
    """Runs the app on an address; `start()` binds, `port` tells where (port 0 in tests)."""

    def __init__(self, app: web.Application, host: str, port: int, backlog: int = 1024) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.backlog = backlog
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = port

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, self.host, self.requested_port, backlog=self.backlog, reuse_address=True
        )
        await site.start()
        for address in self.runner.addresses:
            self.port = address[1]
            break

    async def stop(self) -> None:
        await self.runner.cleanup()
