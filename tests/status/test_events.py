"""`/api/v1/events` (server-sent events) and `/api/v1/status` over a live server."""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from corral.app import Corral
from corral.config import Settings
from corral.services.serve import CorralServer, ServeOptions
from corral.store.status import record_state
from tests.services.conftest import LiveServer
from tests.status.conftest import N001, N002, request


class EventStream:
    """An SSE client: a thread parses `id:`/`data:` blocks into a queue."""

    def __init__(self, server: LiveServer, headers: dict[str, str]) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=20)
        self.conn.request("GET", "/api/v1/events", headers=headers)
        self.response = self.conn.getresponse()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        block: dict[str, str] = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in block:
                        self.events.put({"sse_id": block["id"], **json.loads(block["data"])})
                    block = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    block[key] = value
        except (OSError, ValueError):  # closed by the test
            pass

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        """Shut the socket so the reader sees EOF, then let it finish."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)
        self.conn.close()


@contextmanager
def events(server: LiveServer, **headers: str) -> Iterator[EventStream]:
    stream = EventStream(server, {"Authorization": f"Bearer {server.token}", **headers})
    try:
        yield stream
    finally:
        stream.close()


def report(server: LiveServer, state: str, source: str = N001, **more: Any) -> None:
    reply = request(server, "POST", "/api/v1/boot/self/state", source, {"state": state, **more})
    assert reply.status == 200, reply.body


def test_the_stream_needs_the_admin_token(lab: LiveServer) -> None:
    assert request(lab, "GET", "/api/v1/events").status == 401
    assert request(lab, "GET", "/api/v1/status").status == 401


def test_a_state_post_reaches_an_open_stream_promptly(lab: LiveServer) -> None:
    with events(lab) as stream:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream"
        time.sleep(0.2)  # the stream has its starting point
        started = time.monotonic()
        report(lab, "pxe")
        event = stream.next()
        assert time.monotonic() - started < 0.9  # woken by the hub, not by the 1 s poll
        assert (event["node"], event["kind"], event["data"]["state"]) == ("n001", "state", "pxe")
        assert event["data"]["from"] == "new"
        assert event["sse_id"] == str(event["id"])
        report(lab, "downloading", bytes=5)
        report(lab, "downloading", bytes=9)  # progress: no event
        report(lab, "pxe", source=N002)
        got = [stream.next(), stream.next()]
        assert [(e["node"], e["data"]["state"]) for e in got] == [
            ("n001", "downloading"),
            ("n002", "pxe"),
        ]


def test_changes_from_another_process_arrive_by_polling(lab: LiveServer) -> None:
    with events(lab) as stream:
        time.sleep(0.2)
        with lab.corral.store.transaction() as conn:  # written behind the server's back
            record_state(conn, "n002", "pxe", time.time())
        assert stream.next()["node"] == "n002"


def test_last_event_id_resumes_with_exactly_the_missed_events(lab: LiveServer) -> None:
    for state in ("pxe", "downloading", "unpacking", "booted"):
        report(lab, state)
    with events(lab, **{"Last-Event-ID": "2"}) as stream:
        got = [stream.next() for _ in range(2)]
        assert [e["data"]["state"] for e in got] == ["unpacking", "booted"]
        assert [e["id"] for e in got] == [3, 4]
        report(lab, "ready")
        assert stream.next()["data"]["state"] == "ready"
        assert stream.events.empty()
    page = request(
        lab,
        "GET",
        "/api/v1/events?format=json&since=3",
        headers={"Authorization": f"Bearer {lab.token}"},
    )
    assert [e["data"]["state"] for e in page.json()] == ["booted", "ready"]


def test_status_lists_nodes_with_their_state(lab: LiveServer) -> None:
    report(lab, "pxe")
    auth = {"Authorization": f"Bearer {lab.token}"}
    rows = request(lab, "GET", "/api/v1/status", headers=auth).json()
    assert [(r["node"], r["state"]) for r in rows] == [
        ("n001", "pxe"),
        ("n002", "new"),
        ("n003", "new"),
    ]
    some = request(lab, "GET", "/api/v1/status?names=n[002-003]", headers=auth).json()
    assert [r["node"] for r in some] == ["n002", "n003"]
    missing = request(lab, "GET", "/api/v1/status?names=n[003-004]", headers=auth)
    assert missing.status == 404
    assert "n004" in missing.json()["error"]


def test_stopping_the_server_ends_open_streams_at_once(corral_home: object) -> None:
    async def scenario() -> float:
        options = ServeOptions(address="127.0.0.1", http_port=0, tftp=False, dhcp=False)
        server = CorralServer(Corral(Settings.from_env()), options)
        await server.start()
        token = server.corral.admin_token()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{options.server_url}/api/v1/events"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            assert resp.status == 200
            await resp.content.readline()  # the stream is open
            started = time.monotonic()
            await server.stop()
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 5
