"""Tracker: bencode codec, announce parsing, swarm events and expiry, peer-selection policy."""

from __future__ import annotations

import random
import socket
import statistics
import struct
import time
from dataclasses import replace
from urllib.parse import quote_from_bytes, urlencode

import pytest

from corral.protocols import bencode
from corral.services.tracker import (
    Announce,
    AnnounceError,
    Peer,
    Swarm,
    Tracker,
    TrackerPolicy,
    answer_announce,
    compact_peers,
    handle_announce,
    parse_announce,
    select_peers,
)

IH = bytes(range(20))
OTHER_IH = bytes(range(1, 21))
SIZE = 1000


def pid(n: int) -> bytes:
    return b"-AR1360-" + f"{n:012d}".encode()


def query(info_hash: bytes = IH, peer_id: bytes | None = None, **fields: object) -> str:
    base: dict[str, object] = {
        "port": 6881,
        "uploaded": 0,
        "downloaded": 0,
        "left": SIZE,
        "compact": 1,
    }
    base.update(fields)
    raw = f"info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer_id or pid(1))}"
    return raw + "&" + urlencode(base)


def ann(n: int, left: int = SIZE, event: str = "", **kw: object) -> Announce:
    return Announce(IH, pid(n), f"10.0.0.{n}", 6881, left=left, event=event, **kw)  # type: ignore[arg-type]


def decoded(body: bytes) -> dict[bytes, bencode.Decoded]:
    value = bencode.decode(body)
    assert isinstance(value, dict)
    return value


def unpack_compact(raw: bytes) -> list[tuple[str, int]]:
    assert len(raw) % 6 == 0
    return [
        (socket.inet_ntoa(raw[i : i + 4]), struct.unpack("!H", raw[i + 4 : i + 6])[0])
        for i in range(0, len(raw), 6)
    ]


# --- bencode -------------------------------------------------------------------------------


def test_bencode_round_trip_and_key_order() -> None:
    value: bencode.Value = {"b": 1, "a": [b"x", -3, {"z": b""}], b"\x00": 0}
    raw = bencode.encode(value)
    assert raw == b"d1:\x00i0e1:al1:xi-3ed1:z0:ee1:bi1ee"
    assert bencode.decode(raw) == {b"\x00": 0, b"a": [b"x", -3, {b"z": b""}], b"b": 1}


@pytest.mark.parametrize(
    "raw",
    [b"", b"i", b"i01e", b"i-0e", b"ie", b"5:abc", b"-1:a", b"l", b"di1ei2ee", b"x", b"i1ei2e"],
)
def test_bencode_refuses_malformed(raw: bytes) -> None:
    with pytest.raises(bencode.BencodeError):
        bencode.decode(raw)


def test_bencode_refuses_booleans() -> None:
    with pytest.raises(TypeError):
        bencode.encode(True)


# --- parsing -------------------------------------------------------------------------------


def test_parse_announce_keeps_raw_bytes() -> None:
    weird = bytes([0, 0x2B, 0x25, 0xFF, 0x80] * 4)
    a = parse_announce(query(weird, event="started", numwant=7), "10.1.2.3")
    assert a.info_hash == weird
    assert (a.ip, a.port, a.event, a.numwant, a.left, a.compact) == (
        "10.1.2.3",
        6881,
        "started",
        7,
        SIZE,
        True,
    )


@pytest.mark.parametrize("claimed", ["10.9.9.9", "example.org", "1", "\0", "::1", "x" * 500])
def test_parse_announce_ignores_the_peers_own_ip_param(claimed: str) -> None:
    """A peer is where its packets come from: `ip=` could plant any address in others' lists."""
    assert parse_announce(query(ip=claimed), "10.1.2.3").ip == "10.1.2.3"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "info_hash=abc&peer_id=x&port=1",
        query(port=0),
        query(port=70000),
        query(port="x"),
        query(left=-1),
        query(event="exploded"),
        query(uploaded="1e9"),
        query(left="9" * 4000),
        query(left="9" * 30),
        query(left=1 << 63),
        query(downloaded="+5"),
        query(uploaded=" 5"),
        query(left="١٢"),  # Arabic-Indic digits: int() takes them, the wire must not
        "info_hash=%ZZ&&&==",
        query(key="k" * 5000),
    ],
)
def test_malformed_announce_is_a_failure_not_a_crash(raw: str) -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    status, raw_body = answer_announce(tracker, raw, "10.0.0.1", 0.0, random.Random(1))
    assert status == 400
    assert set(decoded(raw_body)) == {b"failure reason"}
    assert not tracker.swarms[IH].peers  # nothing half-applied


def test_largest_64_bit_counts_are_accepted_and_answered() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    big = (1 << 63) - 1
    rng = random.Random(1)
    q = query(peer_id=pid(1), left=big, uploaded=big, downloaded=big)
    assert answer_announce(tracker, q, "10.0.0.1", 0.0, rng)[0] == 200
    status, body = answer_announce(tracker, query(peer_id=pid(2)), "10.0.0.2", 1.0, rng)
    assert status == 200
    assert unpack_compact(decoded(body)[b"peers"]) == [("10.0.0.1", 6881)]  # type: ignore[arg-type]


def test_unknown_info_hash_is_refused() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    body = decoded(handle_announce(tracker, query(OTHER_IH), "10.0.0.1", 0.0, random.Random(1)))
    assert b"unknown info_hash" in body[b"failure reason"]  # type: ignore[operator]
    assert OTHER_IH not in tracker.swarms


# --- responses -----------------------------------------------------------------------------


def test_compact_peer_encoding() -> None:
    raw = compact_peers([Peer("10.0.0.1", 6881), Peer("192.168.1.200", 65535), Peer("::1", 1)])
    assert raw == bytes([10, 0, 0, 1, 0x1A, 0xE1, 192, 168, 1, 200, 0xFF, 0xFF])


def test_announce_returns_other_peers_compact_and_counts() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE, seeds=[("10.0.0.254", 6000)])
    rng = random.Random(1)
    handle_announce(tracker, query(peer_id=pid(1), event="started"), "10.0.0.1", 0.0, rng)
    body = decoded(
        handle_announce(tracker, query(peer_id=pid(2), event="started"), "10.0.0.2", 1.0, rng)
    )
    peers = unpack_compact(body[b"peers"])  # type: ignore[arg-type]
    assert set(peers) == {("10.0.0.1", 6881), ("10.0.0.254", 6000)}
    assert (body[b"complete"], body[b"incomplete"]) == (1, 2)
    assert body[b"interval"] == TrackerPolicy().storm_interval
    assert body[b"min interval"] == TrackerPolicy().min_interval


def test_every_live_servers_seeder_is_handed_out_and_a_dead_ones_is_forgotten() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE, seeds=[("10.0.0.254", 6000)])
    tracker.set_server_seeds(IH.hex(), [("10.0.0.254", 6000), ("10.0.0.253", 6881)])
    rng = random.Random(1)
    body = decoded(handle_announce(tracker, query(peer_id=pid(1)), "10.0.0.1", 0.0, rng))
    peers = unpack_compact(body[b"peers"])  # type: ignore[arg-type]
    assert set(peers) == {("10.0.0.254", 6000), ("10.0.0.253", 6881)}
    assert body[b"complete"] == 2
    # 10.0.0.254's heartbeat stopped: its seeder is no longer handed out
    tracker.set_server_seeds(IH.hex(), [("10.0.0.253", 6881)])
    body = decoded(handle_announce(tracker, query(peer_id=pid(2)), "10.0.0.2", 1.0, rng))
    peers = unpack_compact(body[b"peers"])  # type: ignore[arg-type]
    assert set(peers) == {("10.0.0.1", 6881), ("10.0.0.253", 6881)}
    assert body[b"complete"] == 1


def test_non_compact_answer_is_a_list_of_dicts() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    rng = random.Random(1)
    handle_announce(tracker, query(peer_id=pid(1)), "10.0.0.1", 0.0, rng)
    body = decoded(handle_announce(tracker, query(peer_id=pid(2), compact=0), "10.0.0.2", 0.0, rng))
    assert body[b"peers"] == [{b"ip": b"10.0.0.1", b"peer id": pid(1), b"port": 6881}]


def test_events_completed_stopped_and_stats() -> None:
    tracker = Tracker()
    key = tracker.publish(IH.hex(), SIZE)
    rng = random.Random(1)
    tracker.announce(ann(1, event="started"), 0.0, rng)
    tracker.announce(ann(2, event="started"), 0.0, rng)
    tracker.announce(ann(1, left=0, event="completed", uploaded=300, downloaded=SIZE), 5.0, rng)
    tracker.announce(ann(1, left=0, event="completed", uploaded=300, downloaded=SIZE), 6.0, rng)
    # aria2c --seed-time=0 sends no `completed`: `stopped` with left 0 counts as one
    tracker.announce(ann(2, left=0, event="stopped", uploaded=700, downloaded=SIZE), 7.0, rng)
    tracker.announce(ann(3, event="started"), 8.0, rng)
    tracker.announce(ann(3, left=10, event="stopped"), 9.0, rng)
    stats = tracker.stats()[key.hex()]
    assert stats == {
        "peers_seen": 3,
        "peers": 1,
        "seeds": 1,
        "leechers": 0,
        "completed": 2,
        "uploaded": 1000,
        "server_uploaded": 0,
        "node_seeds": 1,
    }
    everyone_done = tracker.announce(ann(1, left=0), 8.0, rng)
    assert everyone_done["interval"] == TrackerPolicy().interval


def test_expiry_forgets_silent_peers_but_not_the_server_seed() -> None:
    policy = TrackerPolicy(peer_ttl=60)
    tracker = Tracker(policy)
    tracker.publish(IH, SIZE, seeds=[("10.0.0.254", 6000)])
    rng = random.Random(1)
    tracker.announce(ann(1, uploaded=50), 0.0, rng)
    tracker.announce(ann(2), 50.0, rng)
    answer = tracker.announce(ann(3), 100.0, rng)
    peers = unpack_compact(answer["peers"])  # type: ignore[arg-type]
    assert set(peers) == {("10.0.0.2", 6881), ("10.0.0.254", 6000)}
    assert tracker.stats()[IH.hex()]["uploaded"] == 50  # the gone peer's upload still counts
    assert tracker.stats()[IH.hex()]["peers_seen"] == 3


# --- policy --------------------------------------------------------------------------------


def swarm_with(*peers: Peer) -> Swarm:
    swarm = Swarm(size=SIZE)
    for p in peers:
        swarm.put(p)
    return swarm


def test_policy_prefers_peers_that_have_more_random_among_equals() -> None:
    seed = Peer("10.0.0.1", 1, left=0)
    nearly = Peer("10.0.0.2", 1, left=100, downloaded=900)
    half = [Peer(f"10.0.1.{i}", 1, left=500, downloaded=500) for i in range(10)]
    fresh = Peer("10.0.0.3", 1, left=SIZE)
    me = Peer("10.0.0.9", 1, left=SIZE)
    swarm = swarm_with(fresh, *half, nearly, seed, me)
    policy = TrackerPolicy()
    orders = set()
    for s in range(20):
        got = select_peers(swarm, me, 50, policy, random.Random(s))
        assert got[:2] == [seed, nearly]
        assert got[-1] == fresh
        assert me not in got
        orders.add(tuple(p.ip for p in got[2:12]))
    assert len(orders) > 1  # equals are shuffled
    assert len(select_peers(swarm, me, 3, policy, random.Random(0))) == 3


def test_seeds_get_only_leechers() -> None:
    seed = Peer("10.0.0.1", 1, left=0)
    other_seed = Peer("10.0.0.2", 1, left=0)
    leecher = Peer("10.0.0.3", 1, left=SIZE)
    got = select_peers(
        swarm_with(seed, other_seed, leecher), seed, 50, TrackerPolicy(), random.Random(0)
    )
    assert got == [leecher]


def test_server_seed_handed_out_only_until_enough_peers_have_pieces() -> None:
    policy = TrackerPolicy(server_seed_until=3)
    server = Peer("10.0.0.254", 6000, server=True)
    me = Peer("10.0.0.9", 1, left=SIZE)
    swarm = swarm_with(server, me, *[Peer(f"10.0.1.{i}", 1, left=SIZE) for i in range(5)])
    assert server in select_peers(swarm, me, 50, policy, random.Random(0))
    for p in list(swarm.peers.values())[2:5]:
        swarm.put(replace(p, downloaded=10, left=SIZE - 10))  # three peers now have pieces
    got = select_peers(swarm, me, 50, policy, random.Random(0))
    assert server not in got and len(got) == 5
    lonely = swarm_with(server, me)
    lonely.put(replace(me, downloaded=5))
    assert select_peers(lonely, me, 50, policy, random.Random(0)) == [server]


def test_server_seed_may_be_told_to_wait() -> None:
    server = Peer("10.0.0.254", 6000, server=True)
    swarm = swarm_with(server, Peer("10.0.0.1", 1, left=SIZE))
    assert select_peers(swarm, server, 50, TrackerPolicy(), random.Random(0))
    quiet = TrackerPolicy(server_seed_gets_peers=False)
    assert select_peers(swarm, server, 50, quiet, random.Random(0)) == []


def test_server_seed_announce_keeps_its_mark() -> None:
    tracker = Tracker()
    tracker.publish(IH, SIZE, seeds=[("10.0.0.254", 6000)])
    seeder = Announce(IH, b"-CR0100-" + b"x" * 12, "10.0.0.254", 6000, uploaded=123)
    tracker.announce(seeder, 0.0, random.Random(0))
    stats = tracker.stats()[IH.hex()]
    assert (stats["peers_seen"], stats["server_uploaded"], stats["uploaded"]) == (0, 123, 0)


def test_publish_validates_info_hash() -> None:
    with pytest.raises(ValueError):
        Tracker().publish(b"short")
    with pytest.raises(AnnounceError):
        Tracker().announce(ann(1), 0.0, random.Random(0))


def median_announce_seconds(peers: int, rounds: int = 200) -> float:
    """Median time of one announce into a swarm of `peers` (half seeds, half leechers)."""
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    swarm = tracker.swarms[IH]
    for n in range(peers):
        ip = f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
        swarm.update(Announce(IH, pid(n), ip, 6881, left=0 if n % 2 else SIZE // 3), 0.0)
    rng = random.Random(1)
    times = []
    for r in range(rounds):
        a = Announce(IH, pid(r), f"10.200.0.{r % 250}", 7000, left=SIZE // 2, downloaded=10)
        started = time.perf_counter()
        tracker.announce(a, 1.0, rng)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_announce_cost_is_flat_in_the_number_of_peers() -> None:
    """p50 was 1 ms at 1,000 peers and 12 ms at 8,000: now each level is sampled, not sorted."""
    small, large = median_announce_seconds(1000), median_announce_seconds(8000)
    assert large < 3 * small + 0.0005, (small, large)


def test_one_address_cannot_fill_a_swarm_port_by_port() -> None:
    tracker = Tracker(TrackerPolicy(max_peers_per_ip=4))
    tracker.publish(IH, SIZE)
    rng = random.Random(1)
    for port in range(1000, 1004):
        tracker.announce(Announce(IH, pid(port), "10.0.0.66", port, left=SIZE), 0.0, rng)
    with pytest.raises(AnnounceError, match="too many peers"):
        tracker.announce(Announce(IH, pid(1), "10.0.0.66", 2000, left=SIZE), 0.0, rng)
    tracker.announce(Announce(IH, pid(1000), "10.0.0.66", 1000, left=0), 1.0, rng)  # known: fine
    answer = tracker.announce(ann(7), 1.0, rng)  # another host still joins
    assert len(unpack_compact(answer["peers"])) == 4  # type: ignore[arg-type]
    tracker.announce(Announce(IH, pid(1001), "10.0.0.66", 1001, event="stopped"), 2.0, rng)
    tracker.announce(Announce(IH, pid(1), "10.0.0.66", 2000, left=SIZE), 2.0, rng)  # room again


def test_a_large_swarm_answers_numwant_distinct_random_peers_never_the_asker() -> None:
    """Sampling (not sorting) a 2,000-peer level: no duplicates, never yourself, and
    over many announces the answers spread over the whole swarm."""
    tracker = Tracker()
    tracker.publish(IH, SIZE)
    swarm = tracker.swarms[IH]
    for n in range(2000):
        ip = f"10.1.{n >> 8}.{n & 255}"
        swarm.update(Announce(IH, pid(n), ip, 6881, left=SIZE // 2, downloaded=10), 0.0)
    me = Announce(IH, pid(5), "10.1.0.5", 6881, left=SIZE // 2, downloaded=10, numwant=50)
    rng = random.Random(7)
    seen: set[tuple[str, int]] = set()
    for _ in range(200):
        peers = unpack_compact(tracker.announce(me, 1.0, rng)["peers"])  # type: ignore[arg-type]
        assert len(peers) == 50 and len(set(peers)) == 50
        assert ("10.1.0.5", 6881) not in peers
        seen.update(peers)
    assert len(seen) > 1900  # 200 x 50 draws from 1,999 peers cover nearly all of them


def test_a_node_booting_while_booted_nodes_seed_its_image_is_not_handed_the_server() -> None:
    server = Peer("10.0.0.254", 6000, server=True)
    booted = [Peer(f"10.0.1.{i}", 6881, left=0) for i in range(2)]  # corral-seed on two nodes
    me = Peer("10.0.0.9", 1, left=SIZE)
    got = select_peers(swarm_with(server, *booted, me), me, 50, TrackerPolicy(), random.Random(0))
    assert server not in got and sorted(p.ip for p in got) == [p.ip for p in booted]
    # when those peers are gone, the server is handed out again
    assert select_peers(swarm_with(server, me), me, 50, TrackerPolicy(), random.Random(0)) == [
        server
    ]
