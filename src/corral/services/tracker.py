"""BitTorrent HTTP tracker (BEP 3 announce, BEP 23 compact peers) for corral's own torrents.

Layers, from pure to glue:

- `parse_announce(raw_query, remote_ip)` turns the query string into an `Announce`
  (info_hash and peer_id are raw bytes, so the query is parsed as latin-1);
- `Swarm` is the state of one torrent: peers keyed by (ip, port), with last-seen,
  uploaded/downloaded/left and whether they completed; `Tracker` holds the swarms
  of the published info-hashes (the registry) and answers `announce(a, now, rng)`;
- `select_peers` is the peer-selection policy, a pure function of the swarm;
- `tracker_routes(tracker)` is the aiohttp route table (`GET /announce`).

Only info-hashes published with `Tracker.publish` are served; anything else gets
a bencoded `failure reason`, and so does a malformed query (never a 500).

The policy, in the order it is applied (see bench/RESULTS.md for what each moved):
seeds get only leechers; peers that have more come first (seeds, then by
progress in buckets, random inside a bucket); the server's own seeder is handed
out only while few peers have pieces (`server_seed_until`); while the swarm has
leechers the announce interval is short (`storm_interval`), so late joiners
are learnt quickly, and long once everyone is done.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web

from corral.protocols import bencode

EVENTS = ("", "started", "completed", "stopped", "paused")
MAX_NUMWANT = 200
Address = tuple[str, int]


class AnnounceError(ValueError):
    """The announce is malformed or not for us; the text goes back as `failure reason`."""


@dataclass(frozen=True)
class Announce:
    info_hash: bytes
    peer_id: bytes
    ip: str
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    event: str = ""
    numwant: int = 50
    compact: bool = True

    @property
    def address(self) -> Address:
        return (self.ip, self.port)


@dataclass(frozen=True)
class TrackerPolicy:
    interval: int = 900  # once every peer is complete
    storm_interval: int = 15  # while the swarm has leechers (a boot storm)
    min_interval: int = 5
    peer_ttl: float = 120.0  # forget peers not heard from for this long (> 2 intervals)
    default_numwant: int = 50
    progress_buckets: int = 4  # "random among equals": equal = same progress quarter
    server_seed_until: int = 8  # hand out the server's seeder until this many peers have pieces
    seeds_get_leechers_only: bool = True
    server_seed_gets_peers: bool = True  # False: the server's seeder waits to be contacted


@dataclass
class Peer:
    ip: str
    port: int
    peer_id: bytes = b""
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    completed: bool = False
    server: bool = False  # corral's own seeder: never expires

    @property
    def address(self) -> Address:
        return (self.ip, self.port)

    @property
    def is_seed(self) -> bool:
        return self.left == 0


@dataclass
class SwarmStats:
    peers_seen: int  # distinct peers that ever announced (server seeders excluded)
    peers: int  # currently known, not stopped or expired
    seeds: int
    leechers: int
    completed: int  # `completed` events received
    uploaded: int  # total reported upload by the nodes (latest value per peer)
    server_uploaded: int  # reported by the server's own seeders

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Swarm:
    """All that the tracker knows of one torrent. Pure: the clock is an argument."""

    size: int = 0  # total bytes, when the publisher knew it (progress = 1 - left/size)
    peers: dict[Address, Peer] = field(default_factory=dict)
    seen: set[Address] = field(default_factory=set)
    completed: int = 0
    uploaded_by_gone: int = 0  # upload of peers that stopped or expired

    def add_server_seed(self, address: Address) -> None:
        self.peers[address] = Peer(address[0], address[1], server=True)

    def update(self, a: Announce, now: float) -> Peer | None:
        """Apply one announce; returns the peer (None when it stopped)."""
        peer = self.peers.get(a.address)
        if peer is None:
            peer = Peer(a.ip, a.port, first_seen=now, left=a.left)
            self.peers[a.address] = peer
        if not peer.server:
            self.seen.add(a.address)
        self._note_completion(peer, a)
        peer.peer_id, peer.last_seen = a.peer_id, now
        peer.uploaded, peer.downloaded = max(peer.uploaded, a.uploaded), a.downloaded
        peer.left = a.left
        if a.event == "stopped" and not peer.server:
            self.uploaded_by_gone += self.peers.pop(a.address).uploaded
            return None
        return peer

    def _note_completion(self, peer: Peer, a: Announce) -> None:
        """`completed`, or left going to 0 (aria2c --seed-time=0 sends only `stopped`)."""
        finished = a.event == "completed" or (a.left == 0 and peer.left > 0)
        if finished and not peer.completed and not peer.server:
            peer.completed = True
            self.completed += 1

    def expire(self, now: float, ttl: float) -> None:
        stale = [k for k, p in self.peers.items() if not p.server and now - p.last_seen > ttl]
        for key in stale:
            self.uploaded_by_gone += self.peers.pop(key).uploaded

    def progress(self, peer: Peer) -> float:
        total = self.size or peer.left + peer.downloaded
        return 1.0 if total <= 0 else max(0.0, 1.0 - peer.left / total)

    def has_pieces(self, peer: Peer) -> bool:
        return not peer.server and (peer.is_seed or peer.downloaded > 0)

    def leechers(self) -> int:
        return sum(1 for p in self.peers.values() if not p.is_seed)

    def stats(self) -> SwarmStats:
        nodes = [p for p in self.peers.values() if not p.server]
        seeds = sum(1 for p in self.peers.values() if p.is_seed)
        return SwarmStats(
            peers_seen=len(self.seen),
            peers=len(nodes),
            seeds=seeds,
            leechers=len(self.peers) - seeds,
            completed=self.completed,
            uploaded=self.uploaded_by_gone + sum(p.uploaded for p in nodes),
            server_uploaded=sum(p.uploaded for p in self.peers.values() if p.server),
        )


def select_peers(
    swarm: Swarm, me: Peer, numwant: int, policy: TrackerPolicy, rng: random.Random
) -> list[Peer]:
    """Which peers to hand to `me`. Pure apart from the random source passed in."""
    if me.server and not policy.server_seed_gets_peers:
        return []
    others = [p for p in swarm.peers.values() if p.address != me.address]
    if me.is_seed and policy.seeds_get_leechers_only:
        others = [p for p in others if not p.is_seed]
    nodes = [p for p in others if not p.server]
    servers = [p for p in others if p.server]
    with_pieces = sum(1 for p in swarm.peers.values() if swarm.has_pieces(p))
    chosen = servers if with_pieces < policy.server_seed_until or not nodes else []
    return chosen + rank_by_progress(swarm, nodes, policy, rng)[: max(0, numwant - len(chosen))]


def rank_by_progress(
    swarm: Swarm, peers: Iterable[Peer], policy: TrackerPolicy, rng: random.Random
) -> list[Peer]:
    """Seeds first, then by progress bucket (more first), random among equals."""
    buckets = max(1, policy.progress_buckets)

    def key(p: Peer) -> tuple[int, float]:
        level = buckets + 1 if p.is_seed else int(swarm.progress(p) * buckets)
        return (-level, rng.random())

    return sorted(peers, key=key)


def compact_peers(peers: Iterable[Peer]) -> bytes:
    """BEP 23: 4 bytes IPv4 + 2 bytes port (network order) per peer; IPv6 peers skipped."""
    out = bytearray()
    for p in peers:
        try:
            out += socket.inet_aton(p.ip) + struct.pack("!H", p.port)
        except OSError:
            continue
    return bytes(out)


def peer_dicts(peers: Iterable[Peer]) -> list[bencode.Value]:
    return [{"peer id": p.peer_id, "ip": p.ip, "port": p.port} for p in peers]


def failure(reason: str) -> bytes:
    return bencode.encode({"failure reason": reason})


# --- parsing -------------------------------------------------------------------------------


def _int(fields: dict[str, str], name: str, default: int | None = None) -> int:
    text = fields.get(name)
    if text is None:
        if default is None:
            raise AnnounceError(f"missing {name}")
        return default
    try:
        value = int(text)
    except ValueError:
        raise AnnounceError(f"bad {name}") from None
    if value < 0:
        raise AnnounceError(f"bad {name}")
    return value


def _raw(fields: dict[str, str], name: str) -> bytes:
    value = fields.get(name)
    if value is None:
        raise AnnounceError(f"missing {name}")
    raw = value.encode("latin-1")
    if len(raw) != 20:
        raise AnnounceError(f"{name} must be 20 bytes")
    return raw


def _ip(fields: dict[str, str], remote_ip: str) -> str:
    """The peer's own `ip=` is accepted only as an IPv4 literal; else the source address."""
    claimed = fields.get("ip")
    if claimed:
        try:
            socket.inet_aton(claimed)
            if claimed.count(".") == 3:
                return claimed
        except OSError:
            pass
    return remote_ip


def _numwant(text: str | None) -> int:
    """-1 (the tracker's default) when absent or unreadable; else at most MAX_NUMWANT."""
    try:
        return -1 if text is None else max(-1, min(int(text), MAX_NUMWANT))
    except ValueError:
        return -1


def parse_announce(raw_query: str, remote_ip: str) -> Announce:
    try:
        pairs = parse_qsl(
            raw_query, keep_blank_values=True, encoding="latin-1", strict_parsing=True
        )
    except ValueError:
        raise AnnounceError("malformed query") from None
    fields = dict(pairs)
    event = fields.get("event", "")
    if event not in EVENTS:
        raise AnnounceError("bad event")
    port = _int(fields, "port")
    if not 0 < port < 65536:
        raise AnnounceError("bad port")
    return Announce(
        info_hash=_raw(fields, "info_hash"),
        peer_id=_raw(fields, "peer_id"),
        ip=_ip(fields, remote_ip),
        port=port,
        uploaded=_int(fields, "uploaded", 0),
        downloaded=_int(fields, "downloaded", 0),
        left=_int(fields, "left", 0),
        event=event,
        numwant=_numwant(fields.get("numwant")),
        compact=fields.get("compact", "1") != "0",
    )


# --- the registry and the answer ---------------------------------------------------------


@dataclass
class Tracker:
    """The swarms of the info-hashes corral published. Pure: time and randomness are passed in."""

    policy: TrackerPolicy = field(default_factory=TrackerPolicy)
    swarms: dict[bytes, Swarm] = field(default_factory=dict)
    names: dict[bytes, str] = field(default_factory=dict)

    def publish(
        self, info_hash: bytes | str, size: int = 0, name: str = "", seeds: Iterable[Address] = ()
    ) -> bytes:
        """Serve this info-hash (20 bytes or 40 hex digits); `seeds` are the server's seeders."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if len(key) != 20:
            raise ValueError("an info-hash is 20 bytes")
        swarm = self.swarms.setdefault(key, Swarm(size=size))
        swarm.size = size or swarm.size
        for address in seeds:
            swarm.add_server_seed(address)
        self.names[key] = name or self.names.get(key, key.hex())
        return key

    def unpublish(self, info_hash: bytes) -> None:
        self.swarms.pop(info_hash, None)
        self.names.pop(info_hash, None)

    def announce(
        self, a: Announce, now: float, rng: random.Random
    ) -> dict[bytes | str, bencode.Value]:
        """The response dictionary for one announce; raises AnnounceError if not ours."""
        swarm = self.swarms.get(a.info_hash)
        if swarm is None:
            raise AnnounceError("unknown info_hash: not published by this corral server")
        swarm.expire(now, self.policy.peer_ttl)
        me = swarm.update(a, now)
        numwant = self.policy.default_numwant if a.numwant < 0 else a.numwant
        peers = [] if me is None else select_peers(swarm, me, numwant, self.policy, rng)
        stats = swarm.stats()
        storm = swarm.leechers() > 0
        return {
            "interval": self.policy.storm_interval if storm else self.policy.interval,
            "min interval": self.policy.min_interval,
            "complete": stats.seeds,
            "incomplete": stats.leechers,
            "peers": compact_peers(peers) if a.compact else peer_dicts(peers),
        }

    def stats(self) -> dict[str, dict[str, int]]:
        """Per info-hash (hex): peers seen, seeds, leechers, completed, reported uploads."""
        return {k.hex(): s.stats().as_dict() for k, s in self.swarms.items()}


def handle_announce(
    tracker: Tracker, raw_query: str, remote_ip: str, now: float, rng: random.Random
) -> bytes:
    """Query string in, bencoded body out; never raises for a peer's mistake."""
    try:
        return bencode.encode(tracker.announce(parse_announce(raw_query, remote_ip), now, rng))
    except AnnounceError as exc:
        return failure(str(exc))


def tracker_routes(
    tracker: Tracker, clock: Callable[[], float] = time.monotonic
) -> web.RouteTableDef:
    """`GET /announce` for `make_app(ctx, extra_routes=[tracker_routes(tracker)])`."""
    routes = web.RouteTableDef()
    rng = random.Random()  # noqa: S311 - peer shuffling, not secrets
    now = clock

    @routes.get("/announce")
    async def announce(request: web.Request) -> web.Response:
        body = handle_announce(
            tracker, request.rel_url.raw_query_string, request.remote or "", now(), rng
        )
        return web.Response(
            body=body, content_type="text/plain", headers={"Cache-Control": "no-store"}
        )

    return routes
