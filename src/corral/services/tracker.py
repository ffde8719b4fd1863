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
a bencoded `failure reason`, and so does a malformed query: HTTP 400, never a 500.
Numbers are bounded to 64 bits (one huge `left=` once broke every later announce
of its swarm), and a peer's `ip=` is ignored: a peer is where its packets come
from, or any client could put addresses of its choosing into others' peer lists.

The policy, in the order it is applied (see bench/RESULTS.md for what each moved):
seeds get only leechers; peers that have more come first (seeds, then by
progress in buckets, random inside a bucket); the server's own seeder is handed
out only while few peers have pieces (`server_seed_until`) and no node is a whole
seed (booted nodes that keep seeding, `corral-seed`); while the swarm has
leechers the announce interval is short (`storm_interval`), so late joiners
are learnt quickly, and long once everyone is done.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web

from corral.protocols import bencode

EVENTS = ("", "started", "completed", "stopped", "paused")
MAX_NUMWANT = 200
MAX_COUNT = (1 << 63) - 1  # byte counts: what a 64-bit client can send
MAX_QUERY = 4096  # a real announce is about 300 bytes
MAX_SEEN = 100_000  # distinct peers remembered for the `peers_seen` figure
Address = tuple[str, int]


class AnnounceError(ValueError):
    """The announce is not for us; the text goes back as `failure reason` (HTTP 200, BEP 3)."""

    status = 200


class MalformedAnnounce(AnnounceError):
    """The query itself is bad (HTTP 400, still with a bencoded `failure reason`)."""

    status = 400


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
    max_peers_per_ip: int = 16  # one host cannot fill a swarm (and its memory) port by port


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
    node_seeds: int = 0  # nodes holding the whole image: booting ones, and booted (corral-seed)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Bucket:
    """A set with O(1) add, remove and random sampling (a list plus an index)."""

    def __init__(self) -> None:
        self.items: list[Address] = []
        self.index: dict[Address, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, key: Address) -> None:
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append(key)

    def discard(self, key: Address) -> None:
        at = self.index.pop(key, None)
        if at is None:
            return
        last = self.items.pop()
        if at < len(self.items):
            self.items[at] = last
            self.index[last] = at

    def sample(self, k: int, rng: random.Random, without: Address) -> list[Address]:
        """Up to k members other than `without`, in random order."""
        picked = rng.sample(self.items, min(k + 1, len(self.items)))
        return [a for a in picked if a != without][:k]


@dataclass
class Swarm:
    """All that the tracker knows of one torrent. Pure: the clock is an argument.

    Why the indexes: an announce must cost the same at 8,000 peers as at 8.
    Node peers sit in buckets by progress level (seeds on top), counts of
    seeds and of peers with pieces are kept as peers change, and peers are
    kept in the order they were last heard from, so expiry pops only the
    stale ones. Every change to a peer goes through `put`/`_drop`.
    """

    size: int = 0  # total bytes, when the publisher knew it (progress = 1 - left/size)
    levels: int = 4  # progress buckets: "random among equals" = same progress quarter
    max_per_ip: int = 16
    peers: dict[Address, Peer] = field(default_factory=dict)
    seen: set[Address] = field(default_factory=set)
    completed: int = 0
    uploaded_by_gone: int = 0  # upload of peers that stopped or expired
    seeds: int = 0
    with_pieces: int = 0  # node peers that are seeds or have downloaded something
    servers: dict[Address, Peer] = field(default_factory=dict)
    buckets: dict[int, Bucket] = field(default_factory=dict)
    per_ip: Counter[str] = field(default_factory=Counter)  # node peers per address
    _heard: dict[Address, None] = field(default_factory=dict)  # oldest first

    def add_server_seed(self, address: Address) -> None:
        self.put(Peer(address[0], address[1], server=True))

    def set_server_seeds(self, addresses: Iterable[Address]) -> None:
        """The servers' seeders are exactly `addresses` (a dead server's is forgotten)."""
        wanted = set(addresses)
        for gone in [a for a in self.servers if a not in wanted]:
            self._drop(gone)
        for address in wanted - set(self.servers):
            self.add_server_seed(address)

    def level(self, peer: Peer) -> int:
        if peer.is_seed:
            return self.levels + 1
        return min(int(self.progress(peer) * self.levels), self.levels)

    def put(self, peer: Peer) -> None:
        """Insert or replace a peer, indexing it."""
        self._drop(peer.address)
        self.peers[peer.address] = peer
        self.seeds += peer.is_seed
        if peer.server:
            self.servers[peer.address] = peer
            return
        self.with_pieces += self.has_pieces(peer)
        self.buckets.setdefault(self.level(peer), Bucket()).add(peer.address)
        self.per_ip[peer.ip] += 1
        self._heard[peer.address] = None

    def _drop(self, address: Address) -> Peer | None:
        peer = self.peers.pop(address, None)
        if peer is None:
            return None
        self.seeds -= peer.is_seed
        if peer.server:
            self.servers.pop(address, None)
            return peer
        self.with_pieces -= self.has_pieces(peer)
        self.buckets[self.level(peer)].discard(address)
        self.per_ip[peer.ip] -= 1
        if self.per_ip[peer.ip] <= 0:
            del self.per_ip[peer.ip]
        self._heard.pop(address, None)
        return peer

    def resize(self, size: int) -> None:
        """A new total size moves every peer's progress: re-index them all (rare)."""
        peers = list(self.peers.values())
        for peer in peers:
            self._drop(peer.address)
        self.size = size
        for peer in peers:
            self.put(peer)

    def update(self, a: Announce, now: float) -> Peer | None:
        """Apply one announce; returns the peer (None when it stopped).

        :raises AnnounceError: a new peer from an address that has max_per_ip already.
        """
        if a.address not in self.peers and self.per_ip[a.ip] >= self.max_per_ip:
            raise AnnounceError(f"too many peers from {a.ip} in this swarm")
        old = self._drop(a.address)
        peer = old or Peer(a.ip, a.port, first_seen=now, left=a.left)
        if not peer.server and len(self.seen) < MAX_SEEN:
            self.seen.add(a.address)
        self._note_completion(peer, a)
        peer.peer_id, peer.last_seen = a.peer_id, now
        peer.uploaded, peer.downloaded = max(peer.uploaded, a.uploaded), a.downloaded
        peer.left = a.left
        if a.event == "stopped" and not peer.server:
            self.uploaded_by_gone += peer.uploaded
            return None
        self.put(peer)
        return peer

    def _note_completion(self, peer: Peer, a: Announce) -> None:
        """`completed`, or left going to 0 (aria2c --seed-time=0 sends only `stopped`)."""
        finished = a.event == "completed" or (a.left == 0 and peer.left > 0)
        if finished and not peer.completed and not peer.server:
            peer.completed = True
            self.completed += 1

    def expire(self, now: float, ttl: float) -> None:
        """Forget node peers not heard from for `ttl` (oldest first; stops at a fresh one)."""
        while self._heard:
            oldest = next(iter(self._heard))
            if now - self.peers[oldest].last_seen <= ttl:
                return
            gone = self._drop(oldest)
            assert gone is not None
            self.uploaded_by_gone += gone.uploaded

    def progress(self, peer: Peer) -> float:
        total = self.size or peer.left + peer.downloaded
        return 1.0 if total <= 0 else max(0.0, 1.0 - peer.left / total)

    def has_pieces(self, peer: Peer) -> bool:
        return not peer.server and (peer.is_seed or peer.downloaded > 0)

    def leechers(self) -> int:
        return len(self.peers) - self.seeds

    def stats(self) -> SwarmStats:
        """The figures for `corral` status pages (linear: not for every announce)."""
        nodes = [p for p in self.peers.values() if not p.server]
        return SwarmStats(
            peers_seen=len(self.seen),
            peers=len(nodes),
            seeds=self.seeds,
            leechers=self.leechers(),
            completed=self.completed,
            uploaded=self.uploaded_by_gone + sum(p.uploaded for p in nodes),
            server_uploaded=sum(p.uploaded for p in self.servers.values()),
            node_seeds=self.seeds - len(self.servers),
        )


def select_peers(
    swarm: Swarm, me: Peer, numwant: int, policy: TrackerPolicy, rng: random.Random
) -> list[Peer]:
    """Which peers to hand to `me`: seeds first, then by progress level, random among equals.

    Cost grows with `numwant`, not with the swarm: each level is sampled, never sorted.
    """
    if me.server and not policy.server_seed_gets_peers:
        return []
    no_seeds = me.is_seed and policy.seeds_get_leechers_only
    top = swarm.levels if no_seeds else swarm.levels + 1
    levels = [lv for lv in range(top, -1, -1) if lv in swarm.buckets]
    servers = [
        p
        for p in swarm.servers.values()
        if p.address != me.address and not (no_seeds and p.is_seed)
    ]
    mine = 0 if me.server else int(swarm.level(me) <= top and me.address in swarm.peers)
    has_nodes = sum(len(swarm.buckets[lv]) for lv in levels) - mine > 0
    # the server's seeder while the nodes have little (a storm's start: it serves at its
    # link's full rate) and never once a node is a whole seed (a booted node keeping its
    # image, corral-seed): a late or rebooting node then costs the server nothing
    node_seeds = swarm.seeds - len(swarm.servers)
    early = swarm.with_pieces < policy.server_seed_until and node_seeds <= 0
    chosen = servers if early or not has_nodes else []
    picked: list[Peer] = list(chosen)
    for lv in levels:
        want = numwant - len(picked)
        if want <= 0:
            break
        picked += [swarm.peers[a] for a in swarm.buckets[lv].sample(want, rng, me.address)]
    return picked[: max(numwant, len(chosen))]


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
    """A non-negative decimal of at most 64 bits; anything else is refused."""
    text = fields.get(name)
    if text is None:
        if default is None:
            raise MalformedAnnounce(f"missing {name}")
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) > MAX_COUNT:
        raise MalformedAnnounce(f"bad {name}: a non-negative integer below 2**63")
    return int(text)


def _raw(fields: dict[str, str], name: str) -> bytes:
    value = fields.get(name)
    if value is None:
        raise MalformedAnnounce(f"missing {name}")
    raw = value.encode("latin-1")
    if len(raw) != 20:
        raise MalformedAnnounce(f"{name} must be 20 bytes")
    return raw


def _numwant(text: str | None) -> int:
    """-1 (the tracker's default) when absent or unreadable; else at most MAX_NUMWANT."""
    if text is None or not text.lstrip("-").isdigit() or len(text) > 6:
        return -1
    return max(-1, min(int(text), MAX_NUMWANT))


def parse_announce(raw_query: str, remote_ip: str) -> Announce:
    """The announce in `raw_query`, from the peer at `remote_ip` (its `ip=` is ignored)."""
    if len(raw_query) > MAX_QUERY:
        raise MalformedAnnounce("query too long")
    try:
        pairs = parse_qsl(
            raw_query, keep_blank_values=True, encoding="latin-1", strict_parsing=True
        )
    except ValueError:
        raise MalformedAnnounce("malformed query") from None
    fields = dict(pairs)
    event = fields.get("event", "")
    if event not in EVENTS:
        raise MalformedAnnounce("bad event")
    port = _int(fields, "port")
    if not 0 < port < 65536:
        raise MalformedAnnounce("bad port")
    return Announce(
        info_hash=_raw(fields, "info_hash"),
        peer_id=_raw(fields, "peer_id"),
        ip=remote_ip,
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
        swarm = self.swarms.get(key) or Swarm(
            size=size,
            levels=self.policy.progress_buckets,
            max_per_ip=self.policy.max_peers_per_ip,
        )
        self.swarms[key] = swarm
        if size and size != swarm.size:
            swarm.resize(size)
        for address in seeds:
            swarm.add_server_seed(address)
        self.names[key] = name or self.names.get(key, key.hex())
        return key

    def set_server_seeds(self, info_hash: str, seeds: Iterable[Address]) -> None:
        """Every live server's seeder for a published info-hash (several servers)."""
        swarm = self.swarms.get(bytes.fromhex(info_hash))
        if swarm is not None:
            swarm.set_server_seeds(seeds)

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
        storm = swarm.leechers() > 0
        return {
            "interval": self.policy.storm_interval if storm else self.policy.interval,
            "min interval": self.policy.min_interval,
            "complete": swarm.seeds,
            "incomplete": swarm.leechers(),
            "peers": compact_peers(peers) if a.compact else peer_dicts(peers),
        }

    def stats(self) -> dict[str, dict[str, int]]:
        """Per info-hash (hex): peers seen, seeds, leechers, completed, reported uploads."""
        return {k.hex(): s.stats().as_dict() for k, s in self.swarms.items()}


def handle_announce(
    tracker: Tracker, raw_query: str, remote_ip: str, now: float, rng: random.Random
) -> bytes:
    """Query string in, bencoded body out; never raises for a peer's mistake."""
    return answer_announce(tracker, raw_query, remote_ip, now, rng)[1]


def answer_announce(
    tracker: Tracker, raw_query: str, remote_ip: str, now: float, rng: random.Random
) -> tuple[int, bytes]:
    """(HTTP status, bencoded body): 400 for a malformed query, else 200."""
    try:
        body = tracker.announce(parse_announce(raw_query, remote_ip), now, rng)
    except AnnounceError as exc:
        return exc.status, failure(str(exc))
    return 200, bencode.encode(body)


def tracker_routes(
    tracker: Tracker, clock: Callable[[], float] = time.monotonic
) -> web.RouteTableDef:
    """`GET /announce` for `make_app(ctx, extra_routes=[tracker_routes(tracker)])`."""
    routes = web.RouteTableDef()
    rng = random.Random()  # noqa: S311 - peer shuffling, not secrets
    now = clock

    @routes.get("/announce")
    async def announce(request: web.Request) -> web.Response:
        status, body = answer_announce(
            tracker, request.rel_url.raw_query_string, request.remote or "", now(), rng
        )
        return web.Response(
            status=status,
            body=body,
            content_type="text/plain",
            headers={"Cache-Control": "no-store"},
        )

    return routes
