"""The tracker of a live `corral serve` under hostile announces (issue 10, finding 4)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import quote_from_bytes

from corral.protocols import bencode
from tests.services.conftest import LiveServer
from tests.services.test_tracker import IH, SIZE, pid, query, unpack_compact


def announce(server: LiveServer, raw_query: str) -> tuple[int, dict[bytes, bencode.Decoded]]:
    url = f"{server.url}/announce?{raw_query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    value = bencode.decode(body)
    assert isinstance(value, dict), body
    return status, value


def test_a_huge_left_is_refused_and_the_swarm_keeps_answering(live_server: LiveServer) -> None:
    live_server.server.tracker.publish(IH, SIZE)
    status, body = announce(live_server, query(peer_id=pid(1), left="9" * 4000))
    assert status == 400 and body[b"failure reason"]
    for n in (2, 3):  # every later announce of that torrent still works
        status, body = announce(live_server, query(peer_id=pid(n), port=7000 + n))
        assert status == 200, body
    assert unpack_compact(body[b"peers"]) == [("127.0.0.1", 7002)]  # type: ignore[arg-type]


def test_ip_param_neither_crashes_nor_plants_an_address(live_server: LiveServer) -> None:
    live_server.server.tracker.publish(IH, SIZE)
    nul = f"info_hash={quote_from_bytes(IH)}&peer_id={quote_from_bytes(pid(1))}&port=6881&ip=%00"
    status, _ = announce(live_server, nul)
    assert status == 200
    status, _ = announce(live_server, query(peer_id=pid(2), port=6882, ip="10.66.66.66"))
    assert status == 200
    _, body = announce(live_server, query(peer_id=pid(3), port=6883))
    peers = set(unpack_compact(body[b"peers"]))  # type: ignore[arg-type]
    assert peers == {("127.0.0.1", 6881), ("127.0.0.1", 6882)}


def test_garbage_announces_answer_400_never_500(live_server: LiveServer) -> None:
    live_server.server.tracker.publish(IH, SIZE)
    for raw in ("", "info_hash=%ZZ&&&==", query(port="6881%00"), query(numwant="9" * 5000)):
        status, body = announce(live_server, raw)
        assert status in (200, 400), raw
        if status == 400:
            assert b"failure reason" in body
