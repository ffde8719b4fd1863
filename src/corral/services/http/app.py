"""The aiohttp application and its runner, for `corral serve` and tests."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from corral.services.http import (
    agent,
    agenthub,
    api,
    artifacts,
    auth,
    boot,
    dashboard,
    efiboot,
    enroll,
    errors,
    events,
    execjobs,
    images,
    limits,
    nextboot,
    nicpacks,
    nodeauth,
    nodeoverlay,
    nodescripts,
    nodeself,
    nodestate,
    openapi,
    power,
    rpiboot,
    servers,
    swarm,
    switches,
    tokens,
)
from corral.services.http.context import CONTEXT, HttpContext

IDLE_TIMEOUT = 15.0  # seconds a connection may sit without a complete request head
LINGER_TIME = 2.0  # seconds an unread body is drained (and dropped) before the socket closes


def make_app(
    ctx: HttpContext, extra_routes: list[web.RouteTableDef] | None = None
) -> web.Application:
    """The app; each route's body limit is its own (`limits.body_limit`), checked after auth."""
    middlewares = [auth.auth_middleware, errors.error_middleware, limits.body_limit_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=limits.PUBLIC_BODY)
    app[CONTEXT] = ctx
    tables = (
        api.routes,
        enroll.routes,
        boot.routes,
        rpiboot.routes,
        efiboot.routes,
        nicpacks.routes,
        artifacts.routes,
        openapi.routes,
        swarm.routes,
        servers.routes,
        dashboard.routes,
    )
    admin = (power.routes, switches.routes, images.routes, tokens.routes, nextboot.routes)
    nodes = (nodeauth.routes, nodeself.routes, nodestate.routes, nodeoverlay.routes)
    node_agent = (agent.routes, execjobs.routes, nodescripts.routes)
    for table in (*tables, *admin, *nodes, events.routes, *node_agent, *(extra_routes or [])):
        app.router.add_routes(table)
    app.on_shutdown.append(events.close_streams)
    app.on_shutdown.append(agenthub.close_polls)
    return app


@dataclass
class TlsSite:
    """The HTTPS side of the server: a second port on the same app (`start()` sets port 0's)."""

    port: int
    context: ssl.SSLContext


class HttpServer:
    """Runs the app on an address; `start()` binds, `port` tells where (port 0 in tests).

    `idle_timeout` closes a connection that has not sent a complete request
    head within that many seconds of opening or of its last response: idle
    keep-alive sockets and slowloris clients alike (aiohttp starts this timer
    at connect, and only a complete request head stops it). A body the server
    refused unread is drained for at most LINGER_TIME, so the client can read
    the refusal before the close, and then the socket is closed.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        backlog: int = 1024,
        idle_timeout: float = IDLE_TIMEOUT,
        tls: TlsSite | None = None,
    ) -> None:
        self.app = app
        self.tls = tls
        self.host = host
        self.requested_port = port
        self.backlog = backlog
        self.runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=idle_timeout,
            lingering_time=LINGER_TIME,
        )
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
        if self.tls is not None:
            tls_site = web.TCPSite(
                self.runner,
                self.host,
                self.tls.port,
                backlog=self.backlog,
                reuse_address=True,
                ssl_context=self.tls.context,
            )
            await tls_site.start()
            self.tls.port = self.runner.addresses[-1][1]

    async def stop(self) -> None:
        await self.runner.cleanup()
