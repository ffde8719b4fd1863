"""The server's BitTorrent seeder: a libtorrent session inside `corral serve`.

libtorrent runs its own network threads; this service only configures the
session, adds one torrent per published image (the .torrent + the packed file,
added in seed mode: pieces are verified lazily as they are read) and polls it
from the event loop on a timer (`pop_alerts`, status, the spread throttle).

Settings that matter for a boot storm (measured in bench/RESULTS.md):

- `upload_rate` caps the seeder (bytes/s, 0 = unlimited). libtorrent exempts
  local networks from rate limits by default (the "local peer class"); here
  every peer is put in the global class so the cap holds on a LAN.
- `super_seeding` (BEP 16): each peer is shown one piece at a time, and a new
  one only when the last was seen at another peer: the server sends each
  piece about once.
- `spread_copies`: once the connected peers hold this many distributed copies
  of the image, the upload drops to `trickle_rate`: the server stops spending
  its link on what the nodes can give each other.
- `unchoke_slots` = UNCHOKE_ALL (what `corral serve` uses): every interested peer is
  served at once, so the server's link runs full while it is not the bottleneck
  (small N); the tracker stops handing the seed out as the nodes take over.
- no DHT, LSD, UPnP or NAT-PMP; several peers per IP allowed; every tier announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import libtorrent as lt

from corral.services.tracker import Tracker

log = logging.getLogger("corral.seeder")
UNCHOKE_ALL = -1  # libtorrent's unchoke_slots_limit: no upload-slot limit
PEER_FINGERPRINT = "-CR0100-"


@dataclass
class SeederSettings:
    upload_rate: int = 0  # bytes/s for the whole seeder; 0 = unlimited
    super_seeding: bool = False
    strict_super_seeding: bool = False
    spread_copies: float = 0.0  # > 0: trickle once peers hold this many copies
    trickle_rate: int = 64 * 1024  # bytes/s after spreading
    unchoke_slots: int = 8
    seed_choking_algorithm: int = 0  # 0 round robin, 1 fastest upload, 2 anti-leech
    connections_limit: int = 500
    poll_interval: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)  # raw libtorrent settings


@dataclass
class TorrentStats:
    name: str
    info_hash: str
    uploaded: int  # payload bytes sent since start
    upload_rate: int
    peers: int
    seeds: int
    distributed_copies: float
    throttled: bool
    state: str


def session_settings(address: str, port: int, s: SeederSettings) -> dict[str, Any]:
    return {
        "listen_interfaces": f"{address}:{port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_tiers": True,
        "announce_to_all_trackers": True,
        "upload_rate_limit": s.upload_rate,
        "strict_super_seeding": s.strict_super_seeding,
        "unchoke_slots_limit": s.unchoke_slots,
        "seed_choking_algorithm": s.seed_choking_algorithm,
        "connections_limit": s.connections_limit,
        "peer_fingerprint": PEER_FINGERPRINT,
        "stop_tracker_timeout": 1,
        "alert_mask": int(lt.alert.category_t.error_notification)
        | int(lt.alert.category_t.status_notification),
        **s.extra,
    }


def no_local_exemption(session: Any) -> None:
    """Put every IPv4 and IPv6 peer in the global class: rate limits apply on the LAN too."""
    flt = lt.ip_filter()
    everyone = 1 << lt.session.global_peer_class_id
    flt.add_rule("0.0.0.0", "255.255.255.255", everyone)
    flt.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", everyone)
    session.set_peer_class_filter(flt)


class Seeder:
    """`Seeder(listen_address, port, settings)`; `await start()`, `publish(...)`, `await stop()`."""

    def __init__(self, listen_address: str, port: int, settings: SeederSettings | None = None):
        self.listen_address = listen_address
        self.requested_port = port
        self.settings = settings or SeederSettings()
        self.session: Any = None
        self.handles: dict[str, Any] = {}
        self.throttled: set[str] = set()
        self._poller: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.session.listen_port()) if self.session else self.requested_port

    async def start(self) -> None:
        pack = session_settings(self.listen_address, self.requested_port, self.settings)
        self.session = await asyncio.to_thread(lambda: lt.session(cast(Any, pack)))
        no_local_exemption(self.session)
        self._poller = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        session, self.session = self.session, None
        self.handles.clear()
        if session is not None:
            await asyncio.to_thread(_close_session, session)

    def publish(self, torrent_path: Path, data_path: Path) -> str:
        """Seed `data_path` (the one file of `torrent_path`); returns the info-hash (hex)."""
        params = lt.load_torrent_file(str(torrent_path))
        info = params.ti
        if info is None or info.num_files() != 1:
            raise ValueError("corral image torrents hold exactly one file")
        info_hash = str(info.info_hash())
        if info_hash in self.handles:
            return info_hash
        params.renamed_files = {0: data_path.name}
        params.save_path = str(data_path.parent)
        params.flags = lt.torrent_flags.seed_mode
        if self.settings.super_seeding:
            params.flags |= lt.torrent_flags.super_seeding
        self.handles[info_hash] = self.session.add_torrent(params)
        return info_hash

    def unpublish(self, info_hash: str) -> None:
        handle = self.handles.pop(info_hash, None)
        if handle is not None:
            self.session.remove_torrent(handle)

    def stats(self) -> dict[str, TorrentStats]:
        return {h: self._torrent_stats(h, handle) for h, handle in self.handles.items()}

    def total_uploaded(self) -> int:
        return sum(s.uploaded for s in self.stats().values())

    def _torrent_stats(self, info_hash: str, handle: Any) -> TorrentStats:
        st = handle.status()
        return TorrentStats(
            name=st.name,
            info_hash=info_hash,
            uploaded=int(st.total_payload_upload),
            upload_rate=int(st.upload_payload_rate),
            peers=int(st.num_peers),
            seeds=int(st.num_seeds),
            distributed_copies=distributed_copies(handle),
            throttled=info_hash in self.throttled,
            state=str(st.state),
        )

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                self.poll()
            except Exception:  # a poll must never kill the seeder
                log.exception("seeder poll failed")

    def poll(self) -> None:
        for alert in self.session.pop_alerts():
            if alert.category() & lt.alert.category_t.error_notification:
                log.warning("libtorrent: %s", alert.message())
        if self.settings.spread_copies > 0:
            for info_hash, handle in self.handles.items():
                self._maybe_throttle(info_hash, handle)

    def _maybe_throttle(self, info_hash: str, handle: Any) -> None:
        spread = distributed_copies(handle) >= self.settings.spread_copies
        if spread and info_hash not in self.throttled:
            handle.set_upload_limit(self.settings.trickle_rate)
            self.throttled.add(info_hash)
            log.info("%s: peers hold the image, seeder trickles", info_hash)


def publish_image(
    seeder: Seeder, tracker: Tracker, torrent_path: Path, data_path: Path, advertise: str
) -> str:
    """Open an image's swarm on the tracker, the seeder listed as the server's seed, then
    seed it. In that order: the seeder announces at once, and a swarm not yet open
    refused that announce (a restarted server logged it, and libtorrent backed off)."""
    info_hash = str(lt.torrent_info(str(torrent_path)).info_hash())
    size = data_path.stat().st_size
    tracker.publish(info_hash, size, data_path.name, seeds=[(advertise, seeder.port)])
    return seeder.publish(torrent_path, data_path)


def distributed_copies(handle: Any) -> float:
    """Copies of the torrent held by the connected peers (libtorrent gives -1 to a seed)."""
    counts: list[int] = []
    for peer in handle.get_peer_info():
        have = peer.pieces
        if not counts:
            counts = [0] * len(have)
        for index, bit in enumerate(have):
            counts[index] += bool(bit)
    return spread_of(counts)


def spread_of(counts: list[int]) -> float:
    """Availability as libtorrent defines it: the rarest piece's count + the fraction above it."""
    if not counts:
        return 0.0
    rarest = min(counts)
    return rarest + sum(1 for c in counts if c > rarest) / len(counts)


def _close_session(session: Any) -> None:
    session.pause()
    for handle in session.get_torrents():
        session.remove_torrent(handle)
    del session
