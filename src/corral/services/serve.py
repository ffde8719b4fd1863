"""`corral serve`: DHCP, TFTP and HTTP in one asyncio event loop.

Every service binds in `start()` and lets go in `stop()`; SIGTERM and SIGINT
stop them in reverse order. State that must survive a restart (leases,
discovered machines, node states) is in the database, written as it changes,
so a `kill -9` loses nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol

from aiohttp import web

from corral.app import Corral
from corral.boot.ipxe_binaries import install_ipxe_binaries
from corral.discovery import adopt_by_port
from corral.images.api import list_images
from corral.inventory.errors import InventoryError
from corral.protocols.dhcp.leases import MemoryLeaseStore
from corral.protocols.dhcp.policy import Discovered, ServerIdentity
from corral.protocols.tftp.root import TftpRoot
from corral.services.dhcp import DhcpServer
from corral.services.dhcp_store import (
    DbLeaseStore,
    DbReservations,
    discovery_recorder,
    network_configs,
)
from corral.services.http.app import HttpServer, make_app
from corral.services.http.context import HttpContext
from corral.services.seeder import Seeder, SeederSettings, publish_image
from corral.services.tftp import TftpServer
from corral.services.tracker import Tracker, tracker_routes

log = logging.getLogger("corral.serve")
ADOPT_RETRY = 30.0  # seconds between switch-port lookups for one unknown MAC
RECORD_EVERY = 5.0  # seconds between discovery records for one unknown MAC
DEFAULT_HTTP_PORT = 9480


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class ServeOptions:
    """What `corral serve` was asked to do (its command-line options)."""

    address: str = "0.0.0.0"  # listen address
    advertise: str = "127.0.0.1"  # the address nodes use to reach this server
    interface: str | None = None
    http_port: int = DEFAULT_HTTP_PORT
    tftp_port: int = 69
    dhcp_port: int = 67
    dhcp: bool = True
    proxy_dhcp: bool = False
    tftp: bool = True
    tftp_root: Path | None = None
    seeder: bool = True
    bt_port: int = 6881
    seeder_settings: SeederSettings = field(
        default_factory=lambda: SeederSettings(
            super_seeding=True, spread_copies=1.5, unchoke_slots=10
        )
    )
    extra_routes: list[web.RouteTableDef] = field(default_factory=list)

    @property
    def server_url(self) -> str:
        return f"http://{self.advertise}:{self.http_port}"


class CorralServer:
    def __init__(self, corral: Corral, options: ServeOptions) -> None:
        self.corral = corral
        self.options = options
        self.services: list[Service] = []
        self.http: HttpServer | None = None
        self.tftp: TftpServer | None = None
        self.dhcp: DhcpServer | None = None
        self.tracker = Tracker()
        self.seeder: Seeder | None = None
        self._published: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._adopting: dict[str, float] = {}
        self._recorded: dict[str, float] = {}
        self._record_discovered = discovery_recorder(corral.store)

    def _make_dhcp(self) -> DhcpServer:
        opts = self.options
        store = self.corral.store
        identity = ServerIdentity(ip=IPv4Address(opts.advertise), http_port=opts.http_port)
        return DhcpServer(
            server=identity,
            networks=network_configs(self.corral.read()),
            reservations=DbReservations(store),
            store=MemoryLeaseStore() if opts.proxy_dhcp else DbLeaseStore(store),
            on_discovered=self._on_discovered,
            proxy=opts.proxy_dhcp,
            host=opts.address,
            port=opts.dhcp_port,
            interface=opts.interface,
        )

    def _on_discovered(self, seen: Discovered) -> None:
        """Record an unknown machine, then try to name it by its switch port.

        At most once per MAC every few seconds: a client's DISCOVER and
        REQUEST (and its retries) must not each cost database writes.
        """
        now = time.monotonic()
        if now - self._recorded.get(seen.mac, -RECORD_EVERY) < RECORD_EVERY:
            return
        if len(self._recorded) > 50_000:
            self._recorded = {m: t for m, t in self._recorded.items() if now - t < RECORD_EVERY}
            self._adopting = {m: t for m, t in self._adopting.items() if now - t < ADOPT_RETRY}
        self._recorded[seen.mac] = now
        self._record_discovered(seen)
        if now - self._adopting.get(seen.mac, -ADOPT_RETRY) < ADOPT_RETRY:
            return
        self._adopting[seen.mac] = now
        task = asyncio.get_running_loop().create_task(self._adopt(seen))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _adopt(self, seen: Discovered) -> None:
        try:
            found = await adopt_by_port(self.corral, seen.mac, seen.circuit_id, seen.remote_id)
        except InventoryError as exc:
            log.warning("machine %s: %s", seen.mac, exc)
            return
        if found is not None:
            log.info("machine %s is node %s by its switch port", seen.mac, found.node)

    def _publish_images(self) -> None:
        """Seed every image packed for this server's URL (new packs are found later)."""
        assert self.seeder is not None
        home = self.corral.settings.paths.home
        for image in list_images(self.corral):
            arts = image.artifacts
            if arts is None or arts.server_url != self.options.server_url:
                continue
            if arts.torrent.info_hash in self._published:
                continue
            torrent, data = arts.torrent.path(home), arts.image.path(home)
            if torrent.is_file() and data.is_file():
                publish_image(self.seeder, self.tracker, torrent, data, self.options.advertise)
                self._published.add(arts.torrent.info_hash)
                log.info("seeding image %s (%s)", image.name, arts.torrent.info_hash)

    async def _refresh_torrents(self, every: float = 3.0) -> None:
        while self.seeder is not None:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._publish_images)
            except Exception:  # a half-written pack must not kill the refresher
                log.exception("could not publish images")

    async def _refresh_networks(self, every: float = 2.0) -> None:
        """Network changes made with the CLI reach DHCP without a restart."""
        while self.dhcp is not None:
            await asyncio.sleep(every)
            try:
                configs = tuple(network_configs(await asyncio.to_thread(self.corral.read)))
            except Exception:  # a busy database must not kill the refresher
                log.exception("could not refresh networks for DHCP")
                continue
            if configs != self.dhcp.ctx.networks:
                self.dhcp.ctx = replace(self.dhcp.ctx, networks=configs)
                log.info("dhcp networks updated")

    async def start(self) -> None:
        opts = self.options
        token = self.corral.admin_token(create=True)
        assert token is not None
        await asyncio.to_thread(self.corral.store.migrate)
        tftp_root = opts.tftp_root or self.corral.settings.paths.tftp_root
        ctx = HttpContext(self.corral, token, opts.server_url, tftp_root)
        ctx.extra["tracker"] = self.tracker
        routes = [tracker_routes(self.tracker), *opts.extra_routes]
        self.http = HttpServer(make_app(ctx, routes), opts.address, opts.http_port)
        await self._start(self.http)
        if opts.http_port == 0:  # tests: advertise the port actually bound
            opts.http_port = self.http.port
            ctx.server_url = opts.server_url
        if opts.dhcp or opts.proxy_dhcp:
            self.dhcp = await asyncio.to_thread(self._make_dhcp)
            await self._start(self.dhcp)
            self._tasks.append(asyncio.create_task(self._refresh_networks()))
        if opts.tftp:
            if opts.tftp_root is None:
                await asyncio.to_thread(install_ipxe_binaries, tftp_root)
            self.tftp = TftpServer(TftpRoot(tftp_root), opts.address, opts.tftp_port)
            await self._start(self.tftp)
        if opts.seeder:
            self.seeder = Seeder(opts.address, opts.bt_port, opts.seeder_settings)
            await self._start(self.seeder)
            ctx.extra["seeder"] = self.seeder
            await asyncio.to_thread(self._publish_images)
            self._tasks.append(asyncio.create_task(self._refresh_torrents()))
        log.info("corral serving at %s", opts.server_url)

    async def _start(self, service: Service) -> None:
        await service.start()
        self.services.append(service)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        while self.services:
            service = self.services.pop()
            with contextlib.suppress(Exception):
                await service.stop()


async def serve_forever(corral: Corral, options: ServeOptions) -> None:
    """Run until SIGTERM or SIGINT, then stop every service cleanly."""
    server = CorralServer(corral, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.stop()
        log.info("corral stopped")
