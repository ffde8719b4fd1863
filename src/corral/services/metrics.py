"""Prometheus metrics for `corral serve` (`GET /metrics`, prometheus-client).

Why it reads what already exists: the services count their datagrams in their
own `counters` dataclasses, the tracker knows what peers uploaded, the artifact
handler keeps an egress ledger, and every state change is a row in the events
table. Metrics are collected from those at scrape time or by following the
events table, so no hot path grows a second set of counters, and state changes
recorded by another server on the same database are counted too.

Each server has its own registry (never the library's global one), so several
servers in one process (the tests) do not mix their figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from corral import states
from corral.store import schema
from corral.store.db import Store
from corral.store.status import events_since, last_event_id

log = logging.getLogger(__name__)
BOOT_BUCKETS = (10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 3600)
FOLLOW_SECONDS = 1.0


class ServiceCounters(Collector):
    """Every `counters` dataclass of the running services, as `corral_<service>_<name>_total`."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], object | None]] = {}

    def add(self, service: str, counters: Callable[[], object | None]) -> None:
        self.sources[service] = counters

    def collect(self) -> Iterator[Metric]:
        for service, get in self.sources.items():
            counters = get()
            if counters is None or not dataclasses.is_dataclass(counters):
                continue
            for f in dataclasses.fields(counters):
                value = getattr(counters, f.name)
                if isinstance(value, int):
                    name = f"corral_{service}_{f.name}"
                    yield CounterMetricFamily(name, f"{service}: {f.name.replace('_', ' ')}", value)


class LiveFigures(Collector):
    """Figures read at scrape time from a callable: nodes per state, bytes sent."""

    def __init__(self) -> None:
        self.nodes: dict[str, int] = {}
        self.bytes_sources: list[Callable[[], Iterable[tuple[str, str, int]]]] = []

    def collect(self) -> Iterator[Metric]:
        nodes = GaugeMetricFamily(
            "corral_nodes", "Nodes in the inventory by state", labels=["state"]
        )
        for state, count in sorted(self.nodes.items()):
            nodes.add_metric([state], count)
        yield nodes
        sent = CounterMetricFamily(
            "corral_bytes_sent",
            "Bytes of artifacts sent, by whom (server or peers) and how (http, bittorrent)",
            labels=["by", "via"],
        )
        totals: dict[tuple[str, str], int] = {}
        for source in self.bytes_sources:
            for by, via, count in source():
                totals[(by, via)] = totals.get((by, via), 0) + count
        for (by, via), count in sorted(totals.items()):
            sent.add_metric([by, via], count)
        yield sent


class Metrics:
    """The registry of one server, and what keeps it current."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.services = ServiceCounters()
        self.live = LiveFigures()
        self.registry.register(self.services)
        self.registry.register(self.live)
        self.boot_seconds = Histogram(
            "corral_boot_duration_seconds",
            "From the boot script (pxe) to a state on the way up",
            ["state"],
            buckets=BOOT_BUCKETS,
            registry=self.registry,
        )
        self.state_changes = Counter(
            "corral_node_state_changes",
            "State changes recorded, by the state entered",
            ["state"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "corral_http_requests",
            "HTTP requests answered, by route and status class",
            ["route", "status"],
            registry=self.registry,
        )
        self.power_actions = Counter(
            "corral_power_actions",
            "Power actions run by this server, by action and result",
            ["action", "result"],
            registry=self.registry,
        )
        self._pxe_at: dict[str, float] = {}
        self._after: int | None = None  # the last event counted; None: not started

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # --- following the events table -----------------------------------------------------

    def observe_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Count state changes and boot durations from event rows (oldest first)."""
        for event in events:
            self._after = max(self._after or 0, int(event["id"]))
            if event["kind"] != "state" or not event["node"]:
                continue
            state, node, at = event["data"].get("state"), event["node"], float(event["time"])
            if not isinstance(state, str):
                continue
            self.state_changes.labels(state).inc()
            if state == states.PXE:
                self._pxe_at[node] = at
            elif state in (states.BOOTED, states.READY) and node in self._pxe_at:
                self.boot_seconds.labels(state).observe(max(at - self._pxe_at[node], 0.0))
                if state == states.READY:
                    del self._pxe_at[node]

    def read_store(self, store: Store) -> None:
        """One step of following the database: new events, and nodes per state."""
        with store.reading() as conn:
            if self._after is None:
                self._after = last_event_id(conn)  # count from now, not the whole history
            new = events_since(conn, self._after)
            table = schema.node_status
            rows = conn.execute(sa.select(table.c.state, sa.func.count()).group_by(table.c.state))
            counts = {str(state): int(n) for state, n in rows}
            total = conn.execute(sa.select(sa.func.count()).select_from(schema.nodes)).scalar()
        counts[states.NEW] = counts.get(states.NEW, 0) + max(
            int(total or 0) - sum(counts.values()), 0
        )
        self.observe_events(new)
        self.live.nodes = counts

    async def follow(self, store: Store, every: float = FOLLOW_SECONDS) -> None:
        while True:
            try:
                await asyncio.to_thread(self.read_store, store)
            except Exception:  # a busy database must not stop the metrics
                log.exception("could not read the store for metrics")
            await asyncio.sleep(every)


METRICS = web.AppKey("metrics", Metrics)


def route_label(request: web.Request) -> str:
    """The route's pattern (`/boot/{mac}.ipxe`), never the raw path: labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def count_requests(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    metrics = request.app.get(METRICS)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if metrics is not None:
            metrics.http_requests.labels(route_label(request), f"{exc.status // 100}xx").inc()
        raise
    if metrics is not None:
        metrics.http_requests.labels(route_label(request), f"{response.status // 100}xx").inc()
    return response


def metrics_routes(metrics: Metrics, token: Callable[[], str]) -> web.RouteTableDef:
    """`GET /metrics`, for a scraper holding the admin token (Authorization: Bearer)."""
    routes = web.RouteTableDef()

    @routes.get("/metrics")
    async def scrape(request: web.Request) -> web.Response:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token()):
            raise web.HTTPUnauthorized(
                text="metrics need the token (Authorization: Bearer TOKEN)\n"
            )
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return routes
