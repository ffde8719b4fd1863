"""`corral serve`: DHCP, TFTP and HTTP in one asyncio event loop.

Every service binds in `start()` and lets go in `stop()`; SIGTERM and SIGINT
stop them in reverse order. State that must survive a restart (leases,
discovered machines, node states) is in the database, written as it changes,
so a `kill -9` loses nothing that was acknowledged.

Several servers on one database find each other in its `servers` table
(`corral.store.servers`): each registers, renews a heartbeat, and keeps a
snapshot of the live ones in the HTTP context, from which nodes are told
where else to go; each seeds every packed image, fetching the files it lacks
from a peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from corral import pki
from corral.app import Corral
from corral.config import DEFAULT_HTTP_PORT
from corral.discovery import adopt_by_port
from corral.images.api import list_images
from corral.inventory.errors import InventoryError
from corral.net import dhcp_interface
from corral.pki import Pki
from corral.protocols.dhcp.leases import MemoryLeaseStore
from corral.protocols.dhcp.policy import Discovered, ServerIdentity
from corral.protocols.tftp.root import FileProvider, TftpRoot
from corral.services.dhcp import DhcpServer
from corral.services.dhcp_store import (
    DbLeaseStore,
    DhcpFeed,
    alarm_recorder,
    discovery_recorder,
    network_configs,
    relay_check_for,
    reservation_rows,
    reservations_from,
    switch_map,
)
from corral.services.dns import DnsServer, store_zone_source
from corral.services.event_pruner import prune_forever
from corral.services.grub import GrubFiles
from corral.services.http.agenthub import AgentHub, AgentSettings
from corral.services.http.app import IDLE_TIMEOUT, HttpServer, TlsSite, make_app
from corral.services.http.context import HttpContext
from corral.services.http.events import publish
from corral.services.http.peerfetch import fetch_missing
from corral.services.ipxe_files import install_ipxe_binaries
from corral.services.metrics import METRICS, Metrics, count_requests, metrics_routes
from corral.services.rpi import RpiFiles
from corral.services.seeder import UNCHOKE_ALL, Seeder, SeederSettings, publish_image
from corral.services.tftp import TftpServer
from corral.services.tftp_pool import default_workers
from corral.services.tftpboot import ServerUrls
from corral.services.tracker import Tracker, tracker_routes
from corral.store import servers as server_table
from corral.store.agent import mark_lost

log = logging.getLogger("corral.serve")
ADOPT_RETRY = 30.0  # seconds between switch-port lookups for one unknown MAC
RECORD_EVERY = 5.0  # seconds between discovery records for one unknown MAC
ADOPT_AT_ONCE = 64  # switch-port lookups in flight; more wait for the MAC's next packet


class ServeError(RuntimeError):
    """A service cannot start; the message says what to change."""


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def served_seed(upload_rate: int = 0) -> SeederSettings:
    """The seeder `corral serve` runs: every peer unchoked, at most `upload_rate` bytes/s
    (0: none; `--seed-rate`, measured in bench/RESULTS.md, round 6)."""
    return SeederSettings(unchoke_slots=UNCHOKE_ALL, upload_rate=upload_rate)


@dataclass
class ServeOptions:
    """What `corral serve` was asked to do (its command-line options)."""

    address: str = "0.0.0.0"  # listen address
    advertise: str = "127.0.0.1"  # the address nodes use to reach this server
    interface: str | None = None
    http_port: int = DEFAULT_HTTP_PORT
    # HTTPS for the API and the node endpoints (the same app on a second port), with a
    # certificate from the cluster CA for `advertise` and `tls_names`; None: plain HTTP only
    https_port: int | None = None
    tls_names: tuple[str, ...] = ()
    http_idle_timeout: float = IDLE_TIMEOUT
    tftp_port: int = 69
    dhcp_port: int = 67
    dhcp: bool = True
    proxy_dhcp: bool = False
    tftp: bool = True
    tftp_root: Path | None = None
    # TFTP transfers run in this many worker processes (0: in serve's own event loop);
    # the listener, the limits and the root stay here (services/tftp_pool.py)
    tftp_workers: int = field(default_factory=default_workers)
    seeder: bool = True
    bt_port: int = 6881
    # the server's seed does not hold back (issue 13, bench/RESULTS.md): every peer unchoked,
    # no super-seeding (one node alone never finished with it), no trickle; the tracker hands
    # it out only while few nodes have pieces and no node is a whole seed
    seeder_settings: SeederSettings = field(default_factory=served_seed)
    extra_routes: list[web.RouteTableDef] = field(default_factory=list)
    agent: AgentSettings = field(default_factory=AgentSettings)
    dns: bool = False  # `corral serve` turns it on; tests that need it ask
    dns_port: int = 53
    dns_upstreams: list[str] = field(default_factory=list)

    @property
    def server_url(self) -> str:
        return f"http://{self.advertise}:{self.http_port}"

    @property
    def api_url(self) -> str:
        """Where nodes and the CLI reach the API: HTTPS when served, else `server_url`."""
        if self.https_port is None:
            return self.server_url
        return f"https://{self.advertise}:{self.https_port}"

    def tls_site(self, keys: Pki) -> TlsSite | None:
        """The HTTPS port's TLS context, (re-)issuing the certificate for our names if needed."""
        if self.https_port is None:
            return None
        pki.ensure(keys)
        names = [self.advertise, *self.tls_names]
        if self.address not in ("0.0.0.0", "::"):
            names.append(self.address)
        if pki.server_certificate(keys, names):
            log.info(
                "issued a server certificate for %s", ", ".join(pki.server_names(keys.server_cert))
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(keys.server_cert, keys.server_key)
        return TlsSite(self.https_port, context)


class CorralServer:
    def __init__(self, corral: Corral, options: ServeOptions) -> None:
        self.corral = corral
        self.options = options
        self.services: list[Service] = []
        self.http: HttpServer | None = None
        self.tftp: TftpServer | None = None
        self.dhcp: DhcpServer | None = None
        self.dhcp_feed: DhcpFeed | None = None
        self.dns: DnsServer | None = None
        self.tracker = Tracker()
        self.metrics = Metrics()
        self.seeder: Seeder | None = None
        self._published: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._adopting: dict[str, float] = {}
        self._recorded: dict[str, float] = {}
        self._record_discovered = discovery_recorder(corral.store)
        self._ctx: HttpContext | None = None

    def _make_dhcp(self) -> DhcpServer:
        """The DHCP server on snapshots of the database (runs in a thread: it reads)."""
        opts = self.options
        store = self.corral.store
        identity = ServerIdentity(
            ip=IPv4Address(opts.advertise), http_port=opts.http_port, dns=opts.dns
        )
        rows = reservation_rows(store)
        dhcp = DhcpServer(
            server=identity,
            networks=network_configs(self.corral.read()),
            reservations=reservations_from(rows),
            store=MemoryLeaseStore() if opts.proxy_dhcp else DbLeaseStore(store),
            on_discovered=self._on_discovered,
            record_alarm=alarm_recorder(store),
            relay_check=relay_check_for(switch_map(store)),
            proxy=opts.proxy_dhcp,
            host=opts.address,
            port=opts.dhcp_port,
            interface=dhcp_interface(opts.address, opts.interface),
        )
        self.dhcp_feed = DhcpFeed(dhcp, store, self.corral.read, rows)
        dhcp.refresh = self.dhcp_feed.refresh_reservations
        return dhcp

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
        if self.dhcp is not None:  # a database write: on DHCP's writer thread
            self.dhcp.in_background(partial(self._record_discovered, seen), "discovered machine")
        if now - self._adopting.get(seen.mac, -ADOPT_RETRY) < ADOPT_RETRY:
            return
        if len(self._background) >= ADOPT_AT_ONCE:  # a flood of MACs: try this one later
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

    def _publish_images(self, seeds: list[tuple[str, int]]) -> list[str]:
        """Seed every packed image whose files are here (new packs are found later).

        Every live server's seeder is listed on this tracker (`seeds`), so a node
        that falls back to this tracker still finds every server's copy. Returns
        the sha256s of the files this server lacks (kernels and initramfs too: fetched
        from a peer now, they are here if that peer dies).
        """
        assert self.seeder is not None
        home = self.corral.settings.paths.home
        missing = []
        for image in list_images(self.corral):
            arts = image.artifacts
            if arts is None:
                continue
            missing += [f.sha256 for f in arts.files() if not f.path(home).is_file()]
            torrent, data = arts.torrent.path(home), arts.image.path(home)
            if not (torrent.is_file() and data.is_file()):
                continue
            if arts.torrent.info_hash not in self._published:
                publish_image(self.seeder, self.tracker, torrent, data, self.options.advertise)
                self._published.add(arts.torrent.info_hash)
                log.info("seeding image %s (%s)", image.name, arts.torrent.info_hash)
            if seeds:  # every live server's seeder (this one's too), as they come and go
                self.tracker.set_server_seeds(arts.torrent.info_hash, seeds)
        return missing

    def _seeds(self, ctx: HttpContext) -> list[tuple[str, int]]:
        return [(s.address, s.bt_port) for s in ctx.servers if s.bt_port]

    async def _refresh_torrents(self, ctx: HttpContext, every: float = 3.0) -> None:
        while self.seeder is not None:
            try:
                missing = await asyncio.to_thread(self._publish_images, self._seeds(ctx))
                for sha256 in missing:  # then seeded at the next round
                    await fetch_missing(ctx, sha256)
            except Exception:  # a half-written pack must not kill the refresher
                log.exception("could not publish images")
            await asyncio.sleep(every)

    def _me(self) -> server_table.ServerRecord:
        opts = self.options
        bt_port = self.seeder.port if self.seeder is not None else None
        return server_table.ServerRecord(opts.server_url, opts.api_url, opts.advertise, bt_port)

    def _beat(self, register: bool) -> list[server_table.ServerRecord]:
        now = time.time()
        with self.corral.store.transaction() as conn:
            if register:
                server_table.register(conn, self._me(), now)
            else:
                server_table.heartbeat(conn, self._me(), now)
            return server_table.live_servers(conn, now)

    async def _join(self, ctx: HttpContext) -> None:
        """Register among the cluster's servers, and keep the heartbeat going."""
        ctx.servers = await asyncio.to_thread(self._beat, True)
        self._ctx = ctx
        self._tasks.append(asyncio.create_task(self._heartbeat(ctx)))
        if ctx.peers:
            log.info("other servers on this database: %s", ", ".join(s.url for s in ctx.peers))

    async def _heartbeat(self, ctx: HttpContext) -> None:
        """Renew this server's row; keep the live servers in the HTTP context."""
        while True:
            await asyncio.sleep(server_table.HEARTBEAT)
            try:
                ctx.servers = await asyncio.to_thread(self._beat, False)
            except Exception:  # a busy database must not stop the heartbeat
                log.exception("could not renew this server's heartbeat")

    async def _watch_heartbeats(self, ctx: HttpContext) -> None:
        """Nodes whose agent stopped sending heartbeats become `lost`."""
        settings = self.options.agent
        every = min(settings.heartbeat_timeout / 4, 5.0)
        while True:
            await asyncio.sleep(every)
            try:
                events = await asyncio.to_thread(self._mark_lost, settings.heartbeat_timeout)
            except Exception:  # a busy database must not kill the watchdog
                log.exception("could not check heartbeats")
                continue
            for event in events:
                log.warning("node %s is lost: %s", event["node"], event["data"].get("message"))
                publish(ctx, event)

    def _mark_lost(self, timeout: float) -> list[dict[str, Any]]:
        with self.corral.store.transaction() as conn:
            return mark_lost(conn, timeout, time.time())

    def _tftp_server(self, root: Path) -> TftpServer:
        """TFTP: the files in `root`, and per-node Raspberry Pi and arm64 GRUB files, whose
        kernel command line names the API as an iPXE script does (HTTPS when served)."""
        opts = self.options
        urls = ServerUrls(opts.server_url, opts.api_url)
        providers: list[FileProvider] = [RpiFiles(self.corral, urls), GrubFiles(self.corral, urls)]
        return TftpServer(
            TftpRoot(root, providers), opts.address, opts.tftp_port, workers=opts.tftp_workers
        )

    async def start(self) -> None:
        opts = self.options
        token = self.corral.admin_token(create=True)
        assert token is not None
        await asyncio.to_thread(self.corral.store.migrate)
        tftp_root = opts.tftp_root or self.corral.settings.paths.tftp_root
        ctx = HttpContext(self.corral, token, opts.server_url, tftp_root)
        ctx.extra["tracker"] = self.tracker
        ctx.extra["agent_hub"] = AgentHub(opts.agent)
        self._tasks.append(asyncio.create_task(self._watch_heartbeats(ctx)))
        self._tasks.append(asyncio.create_task(prune_forever(self.corral)))
        routes = [tracker_routes(self.tracker), metrics_routes(self.metrics, lambda: token)]
        app = make_app(ctx, [*routes, *opts.extra_routes])
        app[METRICS] = self.metrics
        app.middlewares.insert(0, count_requests)
        tls = await asyncio.to_thread(opts.tls_site, Pki(self.corral.settings.paths.pki))
        self.http = HttpServer(
            app, opts.address, opts.http_port, idle_timeout=opts.http_idle_timeout, tls=tls
        )
        await self._start(self.http)
        if opts.http_port == 0:  # tests: advertise the port actually bound
            opts.http_port = self.http.port
            ctx.server_url = opts.server_url
        if tls is not None:
            opts.https_port = tls.port
            ctx.api_url = opts.api_url
        if opts.dhcp or opts.proxy_dhcp:
            self.dhcp = await asyncio.to_thread(self._make_dhcp)
            await self._start(self.dhcp)
            assert self.dhcp_feed is not None
            self._tasks.append(asyncio.create_task(self.dhcp_feed.run()))
        if opts.tftp:
            if opts.tftp_root is None:
                await asyncio.to_thread(install_ipxe_binaries, tftp_root)
            self.tftp = self._tftp_server(tftp_root)
            await self._start(self.tftp)
        if opts.dns:
            await self._start_dns()
        if opts.seeder:
            self.seeder = Seeder(opts.address, opts.bt_port, opts.seeder_settings)
            await self._start(self.seeder)
            ctx.extra["seeder"] = self.seeder
            await asyncio.to_thread(self._publish_images, self._seeds(ctx))
            self._tasks.append(asyncio.create_task(self._refresh_torrents(ctx)))
        await self._join(ctx)
        # metrics count events from here: settled before the server says it is up
        await asyncio.to_thread(self.metrics.read_store, self.corral.store)
        self._watch(ctx)
        log.info("corral serving at %s (API %s)", opts.server_url, opts.api_url)

    async def _start_dns(self) -> None:
        opts = self.options
        source = store_zone_source(self.corral.store)
        self.dns = DnsServer(source, opts.address, opts.dns_port, opts.dns_upstreams)
        try:
            await self._start(self.dns)
        except OSError as exc:
            raise ServeError(
                f"cannot serve DNS on port {opts.dns_port}: {exc.strerror}"
                " (another DNS server there? use --dns-port or --no-dns)"
            ) from exc

    def _watch(self, ctx: HttpContext) -> None:
        """Point the metrics at what the services count, and follow the events table."""
        m = self.metrics
        m.services.add("dhcp", lambda: self.dhcp.counters if self.dhcp else None)
        m.services.add("tftp", lambda: self.tftp.counters if self.tftp else None)
        m.services.add("dns", lambda: self.dns.counters if self.dns else None)

        def sent() -> list[tuple[str, str, int]]:
            http = sum(ctx.extra.get("artifact_bytes", {}).values())
            seeded = self.seeder.total_uploaded() if self.seeder else 0
            peers = sum(s.stats().uploaded for s in self.tracker.swarms.values())
            return [("server", "http", http), ("server", "bittorrent", seeded),
                    ("peers", "bittorrent", peers)]  # fmt: skip

        m.live.bytes_sources.append(sent)
        self._tasks.append(asyncio.create_task(m.follow(self.corral.store)))

    def _unregister(self) -> None:
        with self.corral.store.transaction() as conn:
            server_table.unregister(conn, self.options.server_url)

    async def _start(self, service: Service) -> None:
        await service.start()
        self.services.append(service)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self._ctx is not None:  # a clean stop: the others stop sending nodes here
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._unregister)
            self._ctx = None
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
