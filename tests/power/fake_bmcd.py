"""FakeBmcd: a fake Turing Pi 2 BMC (no BMC firmware can run here), an aiohttp
server on loopback answering in the request and response forms of bmcd 2.x:

- `/api/bmc/authenticate` (src/authentication/authentication_service.rs): JSON
  `{"username", "password"}`; 200 with `X-Auth-Token` and a session body whose
  `id` is the token; 403 for bad credentials. Other `/api/bmc` routes take
  `Bearer TOKEN` or `Basic` and answer 401 without.
- `GET /api/bmc?opt&type` (src/api/legacy.rs, api/into_legacy_response.rs):
  `{"response": [{"result": X}]}`, `"uart"` for UART reads, `"ok"` for a set,
  error messages as the result with 400; `node` out of 0..3 is refused with
  bmcd's message. USB mode numbers as `set_usb_mode` decodes them.
- flash (legacy.rs `handle_transfer_request`, `handle_file_upload`,
  `cancel_file_upload`, streaming_data_service.rs `StreamingState`): the handle
  as a bare `{"handle": N}`, the image as one multipart field, the state as
  bare serde JSON; a wrong length or sha256 ends in `{"Error": ...}`; the
  node is powered off at the end (app/upgrade_worker.rs).
- `/api/bmc/serial/ws?node=N` (src/serial_service.rs): binary frames both ways.

What a test may steer: `hold_upload` (an Event the upload waits on after its
first chunk) and `uart_reply` (what the "module" prints for each line it gets).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import WSMsgType, web

USB_MODES = {0: "Host", 1: "Device", 2: "Flash"}


class FakeBmcd:
    def __init__(self, user: str = "root", password: str = "turing", auth_route: bool = True):
        self.user, self.password, self.auth_route = user, password, auth_route
        self.power = {1: 0, 2: 0, 3: 0, 4: 0}
        self.uart_out = {n: "" for n in range(4)}
        self.uart_in: dict[int, list[str]] = {n: [] for n in range(4)}
        self.serial_in: dict[int, bytearray] = {n: bytearray() for n in range(4)}
        self.uart_reply: Callable[[bytes], bytes] = lambda line: b"echo: " + line
        self.usb = {"node": 0, "mode": 1, "route": 4}
        self.resets: list[int] = []
        self.msd: list[int] = []
        self.tokens: set[str] = set()
        self.logins = 0
        self.basic_calls = 0
        self.requests: list[dict[str, str]] = []
        self.state: Any = "Ready"
        self.transfer: dict[str, Any] = {}
        self.written = bytearray()
        self.cancelled: list[int] = []
        self.first_chunk = asyncio.Event()
        self.hold_upload: asyncio.Event | None = None
        self.url = ""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeBmcd]:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/api/bmc/authenticate", self._authenticate)
        app.router.add_get("/api/bmc", self._legacy)
        app.router.add_post("/api/bmc/upload/{handle}", self._upload)
        app.router.add_get("/api/bmc/upload/{handle}/cancel", self._cancel)
        app.router.add_route("*", "/api/bmc/serial/ws", self._serial)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            if self.hold_upload is not None:
                self.hold_upload.set()  # a held upload must not hold the shutdown
            await runner.cleanup()

    # authentication ----------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/api/bmc/authenticate":
            if not self.auth_route:
                return web.Response(status=404)
            return await handler(request)
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Bearer" and value in self.tokens:
            return await handler(request)
        if scheme == "Basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            if (user, password) == (self.user, self.password):
                self.basic_calls += 1
                return await handler(request)
        return web.Response(status=401, text="Unauthorized", headers={"WWW-Authenticate": "Bearer"})

    async def _authenticate(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if (body.get("username"), body.get("password")) != (self.user, self.password):
            return web.Response(status=403, text="Invalid credentials")
        token = secrets.token_hex(16)
        self.tokens.add(token)
        self.logins += 1
        session = {"id": token, "name": "session", "description": "", "username": self.user}
        return web.Response(text=json.dumps(session), headers={"X-Auth-Token": token})

    # the legacy API ------------------------------------------------------------------

    @staticmethod
    def legacy(status: int, result: Any, key: str = "result") -> web.Response:
        return web.json_response({"response": [{key: result}]}, status=status)

    async def _legacy(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(q)
        kind, opt = q.get("type"), q.get("opt")
        if opt not in ("get", "set"):
            return self.legacy(400, "Missing `opt` parameter")
        if kind == "flash" and opt == "get":
            return web.Response(text=json.dumps(self.state))
        if kind == "power" and opt == "get":
            return self.legacy(200, [{f"node{n}": str(v) for n, v in self.power.items()}])
        if kind == "power":
            for n in self.power:
                value = q.get(f"node{n}")
                if value not in (None, "0", "1"):
                    return self.legacy(400, f"Invalid value `{value}` for parameter `node{n}`")
                if value is not None:
                    self.power[n] = int(value)
            return self.legacy(200, "ok")
        if kind == "usb" and opt == "get":
            usb = self.usb
            route = "Bmc" if usb["route"] else "AlternativePort"
            node = f"Node {usb['node'] + 1}"
            mode = USB_MODES[usb["mode"]]
            return self.legacy(
                200, [{"mode": mode, "node": node, "route": route, "bus_type": "Hub"}]
            )
        if "node" not in q:
            return self.legacy(400, "Missing `node` parameter")
        if not q["node"].lstrip("-").isdigit():
            return self.legacy(400, "Parameter `node` is not a number")
        node = int(q["node"])
        if not 0 <= node <= 3:
            return self.legacy(400, "Parameter `node` is out of range 0..3 of node IDs")
        return self._node_call(kind, opt, node, q)

    def _node_call(self, kind: str | None, opt: str, node: int, q: dict[str, str]) -> web.Response:
        if kind == "reset":
            self.resets.append(node)
        elif kind == "node_to_msd":
            self.msd.append(node)
        elif kind == "usb":
            mode = int(q["mode"])
            self.usb = {"node": node, "mode": mode & 0b11, "route": mode & 0b100}
        elif kind == "uart" and opt == "set":
            self.uart_in[node].append(q["cmd"])
        elif kind == "uart":
            text, self.uart_out[node] = self.uart_out[node], ""
            return self.legacy(200, text, key="uart")
        elif kind == "flash":
            return self._begin_flash(node, q)
        else:
            return self.legacy(400, f"Invalid `type` parameter {kind}")
        return self.legacy(200, "ok")

    # flashing ---------------------------------------------------------------------------

    def _begin_flash(self, node: int, q: dict[str, str]) -> web.Response:
        if "file" not in q:
            return self.legacy(400, "Invalid `file` query parameter")
        if "length" not in q:
            return self.legacy(411, "Invalid `length` query parameter")
        handle = secrets.randbelow(1 << 31)
        size = int(q["length"])
        self.transfer = {"handle": handle, "node": node, "sha256": q.get("sha256"), "size": size}
        self.written = bytearray()
        self.state = self._transferring()
        return web.Response(text=json.dumps({"handle": handle}))

    def _transferring(self) -> dict[str, Any]:
        t = self.transfer
        context = {"id": t["handle"], "process_name": f"Node {t['node'] + 1} os install service"}
        context |= {"size": t["size"], "cancelled": False, "bytes_written": len(self.written)}
        return {"Transferring": context}

    async def _upload(self, request: web.Request) -> web.Response:
        if int(request.match_info["handle"]) != self.transfer.get("handle"):
            return self.legacy(400, "transfer handle does not match")
        # one multipart field, parsed by hand: aiohttp's own reader warns (deprecated API)
        boundary = request.headers.get("Content-Type", "").partition("boundary=")[2].strip('"')
        if not boundary:
            return self.legacy(400, "Multipart form invalid")
        head, tail = bytearray(), f"\r\n--{boundary}--\r\n".encode()
        async for received in request.content.iter_any():
            chunk = received
            if b"\r\n\r\n" not in head:  # the field's headers come first
                head += received
                if b"\r\n\r\n" not in head:
                    continue
                chunk = bytes(head.partition(b"\r\n\r\n")[2])
            if not chunk:
                continue
            self.written += chunk
            self.state = self._transferring()
            self.first_chunk.set()
            if self.hold_upload is not None:
                await self.hold_upload.wait()
            if self.cancelled:  # bmcd drops the transfer's channel
                return self.legacy(500, "transfer canceled")
        if not self.written.endswith(tail):
            return self.legacy(400, "Multipart form invalid")
        del self.written[-len(tail) :]
        t = self.transfer
        if len(self.written) != t["size"]:
            self.state = {"Error": f"missing {t['size'] - len(self.written)} bytes"}
            return self.legacy(400, self.state["Error"])
        if t["sha256"] and hashlib.sha256(self.written).hexdigest() != t["sha256"]:
            self.state = {"Error": "sha256 checksum mismatch"}
            return self.legacy(500, self.state["Error"])
        self.power[t["node"] + 1] = 0  # the upgrade worker powers the node off
        self.state = {"Done": [{"secs": 1, "nanos": 0}, len(self.written)]}
        return web.Response()

    async def _cancel(self, request: web.Request) -> web.Response:
        self.cancelled.append(int(request.match_info["handle"]))
        self.state = {"Error": "transfer canceled"}
        if self.hold_upload is not None:
            self.hold_upload.set()
        return web.Response()

    # serial -----------------------------------------------------------------------------

    async def _serial(self, request: web.Request) -> web.StreamResponse:
        node = request.query.get("node", "")
        if not node.isdigit() or not 0 <= int(node) <= 3:
            return self.legacy(400, "Parameter `node` is out of range 0..3 of node IDs")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                self.serial_in[int(node)] += msg.data
                await ws.send_bytes(self.uart_reply(msg.data))
        return ws


@contextmanager
def fake_bmcd_thread(**kw: Any) -> Iterator[FakeBmcd]:
    """FakeBmcd on its own event loop in a thread, for code that runs `asyncio.run`
    itself (the CLI). Read its state only after the call under test returned."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bmc = FakeBmcd(**kw)
    serving = bmc.running()
    try:
        asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(10)
        yield bmc
    finally:
        asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
