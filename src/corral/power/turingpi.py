"""Turing Pi 2 boards: the BMC daemon's HTTP API (bmcd, BMC firmware 2.x).

Learnt from bmcd's source (src/api/legacy.rs, src/serial_service.rs,
src/authentication/), in its own words nowhere here:

- `GET /api/bmc?opt=get|set&type=T&...` answers `{"response": [{"result": X}]}`
  (`"uart"` instead of `"result"` for a UART read); an error is the same shape
  with the message as X and a 4xx/5xx status. Power takes `node1..node4=0|1`
  (slots count from 1); reset, USB, mass storage, UART and flash take `node=0..3`.
- USB mode is one number: bits 0-1 the mode (0 host, 1 device, 2 flash), bit 2
  the route (0 the USB-A port, 1 the BMC).
- Flashing a module: `opt=set&type=flash&node=N&file=NAME&length=BYTES&sha256=HEX`
  answers a bare `{"handle": H}`; the image goes as one multipart field to
  `POST /api/bmc/upload/H`; `GET /api/bmc/upload/H/cancel` aborts; `opt=get&type=flash`
  answers the bare transfer state: `"Ready"`, `{"Transferring": {..., "size",
  "bytes_written"}}`, `{"Done": [duration, bytes]}` or `{"Error": "message"}`.
  The firmware verifies the sha256 and powers the node off at the end.
- The serial console is a websocket, `/api/bmc/serial/ws?node=N`: the module's
  output in binary frames, keystrokes back the same way.
- Authentication: `POST /api/bmc/authenticate` with `{"username", "password"}`
  answers the token in `X-Auth-Token` (and as `id` in the body); every call then
  sends `Authorization: Bearer TOKEN`. bmcd also takes `Basic`: a board whose
  firmware has no authenticate route (404) gets basic auth on each call.

The token is shared by the four slots of a board for one run; a 401 gets one
fresh token. The board serves a self-signed certificate, so TLS is not
verified unless `verify_tls=true`. The password is only ever in a request body
or header, never in a URL, and scrubbed from every message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from corral.power.base import (
    ALL_POWER,
    Capability,
    Console,
    PowerDriver,
    PowerState,
    Setting,
    run_blocking,
)
from corral.power.board import FlashResult, Progress, UsbState
from corral.power.errors import FinalError, RetryableError, SettingsError

SLOTS = 4
# bmcd: bits 0-1 the mode, bit 2 the route
USB_MODES = {"host": 0, "device": 1, "flash": 2}
USB_ROUTES = {"usb-a": 0, "bmc": 4}
CHUNK = 1 << 20
ESCAPE = b"\x1d"  # Ctrl-] leaves the console, as for QEMU sockets


class TuringPiDriver(PowerDriver):
    name = "turingpi"
    capabilities = ALL_POWER | {
        Capability.RESET,
        Capability.CONSOLE,
        Capability.USB,
        Capability.FLASH,
        Capability.MASS_STORAGE,
    }
    settings = (
        Setting("address", "board URL, e.g. https://turingpi.local", required=True),
        Setting("slot", "node slot on the board, 1-4", required=True),
        Setting("username", "BMC user", default="root"),
        Setting("password", "BMC password", secret=True),
        Setting("verify_tls", "check the board's TLS certificate (true/false)", default="false"),
        Setting("timeout", "seconds to wait for one HTTP answer", default="10"),
        Setting("flash_stall", "seconds a flash may make no progress", default="300"),
    )

    # requests --------------------------------------------------------------------

    @property
    def base(self) -> str:
        address = self.config.need("address").rstrip("/")
        return address if "://" in address else f"https://{address}"

    @property
    def slot(self) -> int:
        return self.config.integer("slot", 1, SLOTS)

    @property
    def node_id(self) -> str:
        """bmcd's `node` parameter: the slot counted from 0."""
        return str(self.slot - 1)

    def _session(self, long: bool = False) -> aiohttp.ClientSession:
        """A session for one call; `long` for an upload or the console: no total limit,
        and the BMC may take up to `flash_stall` seconds to answer (it writes as it reads)."""
        seconds = self.config.number("timeout")
        if long:
            stall = self.config.number("flash_stall")
            timeout = aiohttp.ClientTimeout(sock_connect=seconds, sock_read=stall)
        else:
            timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=seconds, sock_read=seconds)
        verify = self.config.flag("verify_tls")
        return aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=verify))

    async def _auth(self, http: aiohttp.ClientSession, stale: str | None = None) -> dict[str, str]:
        """The Authorization header for this board; a new token if `stale` was refused."""
        user, password = self.config.get("username") or "", self.config.get("password")
        if password is None:
            return {}
        key = ("turingpi-auth", self.base, user)
        shared = self.runtime.shared
        async with self.runtime.lock(key):
            if key not in shared or (stale is not None and shared[key] == stale):
                shared[key] = await self._authenticate(http, user, password)
        return {"Authorization": str(shared[key])}

    async def _authenticate(self, http: aiohttp.ClientSession, user: str, password: str) -> str:
        url = f"{self.base}/api/bmc/authenticate"
        async with http.post(url, json={"username": user, "password": password}) as resp:
            if resp.status in (401, 403):
                raise FinalError(f"node {self.config.node}: the board refused the credentials")
            if resp.status in (404, 405):  # firmware without the route: basic auth per call
                pair = base64.b64encode(f"{user}:{password}".encode()).decode()
                return f"Basic {pair}"
            if resp.status != 200:
                raise RetryableError(f"node {self.config.node}: authenticate: HTTP {resp.status}")
            token = resp.headers.get("X-Auth-Token")
            if not token:
                body = await resp.json(content_type=None)
                token = body.get("id") if isinstance(body, dict) else None
        if not token:
            raise FinalError(f"node {self.config.node}: the board sent no token")
        return f"Bearer {token}"

    async def _call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, Any]:
        """One request with the board's credentials; on 401 once more with a new token."""
        stale: str | None = None
        for last in (False, True):
            headers = await self._auth(http, stale)
            url = f"{self.base}{path}"
            async with http.request(method, url, params=params, headers=headers, data=data) as r:
                refused = headers.get("Authorization", "")
                # a streamed body cannot be sent twice: only bodiless calls retry
                if r.status == 401 and refused.startswith("Bearer ") and not last and data is None:
                    stale = refused
                    continue
                if r.status == 401:
                    raise FinalError(f"node {self.config.node}: the board refused the login")
                text = await r.text()
                try:
                    return r.status, await r.json(content_type=None) if text else None
                except ValueError:
                    return r.status, text
        raise AssertionError("unreachable")

    async def _request(self, method: str, path: str, **params: str) -> tuple[int, Any]:
        try:
            async with self._session() as http:
                return await self._call(http, method, path, params)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise RetryableError(f"node {self.config.node}: {self.base}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise RetryableError(f"node {self.config.node}: bad answer: {exc}") from None

    async def api(self, opt: str, type_: str, **args: str) -> Any:
        """One `/api/bmc` call; the `response[0]` object of the answer."""
        status, body = await self._request("GET", "/api/bmc", opt=opt, type=type_, **args)
        return self._answer(status, body, type_)

    def _answer(self, status: int, body: Any, type_: str, final: bool = False) -> Any:
        """`response[0]` of a legacy answer, or its error (`final`: never retryable)."""
        try:
            item = body["response"][0]
        except (KeyError, IndexError, TypeError):
            if status == 200:
                raise RetryableError(
                    f"node {self.config.node}: unexpected answer {body!r}"
                ) from None
            item = {"result": str(body or "")}
        if status != 200:
            message = item.get("result", "") if isinstance(item, dict) else ""
            error = FinalError if final or 400 <= status < 500 else RetryableError
            raise error(f"node {self.config.node}: {type_}: HTTP {status} {message}".rstrip())
        return item

    # power -------------------------------------------------------------------------

    async def _status(self) -> PowerState:
        item = await self.api("get", "power")
        states = item.get("result", item)
        if isinstance(states, list):
            states = states[0] if states else {}
        value = str(states.get(f"node{self.slot}", ""))
        return {"1": PowerState.ON, "0": PowerState.OFF}.get(value, PowerState.UNKNOWN)

    async def _set_power(self, on: bool) -> None:
        await self.api("set", "power", **{f"node{self.slot}": "1" if on else "0"})

    async def _on(self) -> None:
        await self._set_power(True)
        await self.wait_for(PowerState.ON)

    async def _off(self) -> None:
        await self._set_power(False)
        await self.wait_for(PowerState.OFF)

    async def _reset(self) -> None:
        await self.api("set", "reset", node=self.node_id)

    # USB and mass storage --------------------------------------------------------------

    async def set_usb(self, mode: str = "device", route: str = "bmc") -> None:
        """Give the board's USB bus to this slot: `host` (the module drives the bus),
        `device` (the module is a USB device) or `flash` (device, held in its
        boot loader), on the BMC's own port or the USB-A connector."""
        if mode not in USB_MODES or route not in USB_ROUTES:
            raise SettingsError(
                f"USB mode {mode!r} route {route!r}: modes {', '.join(USB_MODES)}, "
                f"routes {', '.join(USB_ROUTES)}"
            )
        number = str(USB_MODES[mode] | USB_ROUTES[route])

        async def hook() -> None:
            await self.api("set", "usb", node=self.node_id, mode=number)

        await self._do(Capability.USB, hook)

    async def usb_state(self) -> UsbState:
        """Which slot has the board's USB bus, in which mode, on which route."""

        async def hook() -> UsbState:
            item = await self.api("get", "usb")
            result = item.get("result")
            state = result[0] if isinstance(result, list) and result else {}
            if not isinstance(state, dict):
                raise RetryableError(f"node {self.config.node}: unexpected USB answer {item!r}")
            route = {"Bmc": "bmc", "AlternativePort": "usb-a"}.get(str(state.get("route")), "?")
            return UsbState(str(state.get("node", "?")), str(state.get("mode", "?")).lower(), route)

        return await self._do(Capability.USB, hook)

    async def mass_storage(self) -> None:
        """Expose the slot's module storage (eMMC) to the BMC as a USB mass-storage device."""

        async def hook() -> None:
            await self.api("set", "node_to_msd", node=self.node_id)

        await self._do(Capability.MASS_STORAGE, hook)

    # UART ------------------------------------------------------------------------------

    async def uart_read(self) -> str:
        """What the module wrote to its UART since the last read (bmcd buffers it)."""
        item = await self.api("get", "uart", node=self.node_id)
        return str(item.get("uart", ""))

    async def uart_write(self, line: str) -> None:
        """Send one line to the module (bmcd adds CR LF)."""
        await self.api("set", "uart", node=self.node_id, cmd=line)

    def _console(self) -> Console:
        return Console(attach=self._terminal_console, description="Turing Pi serial; Ctrl-] leaves")

    async def _terminal_console(self) -> None:
        """Bridge this terminal (raw mode is the caller's) to the module's UART."""
        loop = asyncio.get_running_loop()

        async def read() -> bytes:
            data = await loop.run_in_executor(None, os.read, sys.stdin.fileno(), 1024)
            return data.split(ESCAPE)[0] if ESCAPE in data else data

        def write(data: bytes) -> None:
            os.write(sys.stdout.fileno(), data)

        await self.bridge_serial(read, write)

    async def bridge_serial(
        self, read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], None]
    ) -> None:
        """Copy `read()` to the module and its output to `write` until `read` gives b""."""
        self.require(Capability.CONSOLE)
        url = f"{self.base}/api/bmc/serial/ws"
        async with self._session(long=True) as http:
            headers = await self._auth(http)
            try:
                ws = await http.ws_connect(
                    url, params={"node": self.node_id}, headers=headers, heartbeat=20
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 404:
                    raise FinalError(
                        f"node {self.config.node}: the board has no serial websocket "
                        "(bmcd 2.x serves /api/bmc/serial/ws): update the BMC firmware, "
                        "or use `corral board uart`"
                    ) from None
                raise RetryableError(
                    f"node {self.config.node}: serial: HTTP {exc.status}"
                ) from None
            except aiohttp.ClientConnectionError as exc:
                raise RetryableError(f"node {self.config.node}: {self.base}: {exc}") from None
            async with ws:

                async def output() -> None:
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            write(msg.data)
                        elif msg.type == aiohttp.WSMsgType.TEXT:
                            write(msg.data.encode())

                pump = asyncio.create_task(output())
                try:
                    while (data := await read()) and not pump.done():
                        await ws.send_bytes(data)
                finally:
                    pump.cancel()

    # flashing a module -----------------------------------------------------------------

    async def flash(self, image: Path, progress: Progress | None = None) -> FlashResult:
        """Write `image` to the slot's module through the BMC; the node is off afterwards.

        Cancelled (Ctrl-C), the transfer is aborted on the board and the node
        powered off before the cancellation goes on.

        :raises NotSupported: the driver cannot flash.
        :raises FinalError: no such file, the board refused, or the write failed.
        """
        self.require(Capability.FLASH)
        report = progress or (lambda stage, done, total: None)
        try:
            size = image.stat().st_size
        except OSError as exc:
            raise FinalError(f"image {image}: {exc.strerror}") from None
        if size == 0:
            raise FinalError(f"image {image} is empty")
        started = time.monotonic()
        digest = await run_blocking(lambda: _sha256(image, size, report))
        await self.off()
        handle = await self._begin_flash(image.name, size, digest)
        upload = asyncio.create_task(self._upload(handle, image, size, report))
        try:
            await self._watch_flash(upload, report)
        except BaseException:
            upload.cancel()
            await asyncio.shield(self._abort_flash(handle))
            raise
        await self.off()  # bmcd powers the node off at the end; make sure
        return FlashResult(handle, size, digest, round(time.monotonic() - started, 3))

    async def _begin_flash(self, name: str, size: int, digest: str) -> int:
        params = {"opt": "set", "type": "flash", "node": self.node_id, "file": name}
        params |= {"length": str(size), "sha256": digest}
        status, body = await self._request("GET", "/api/bmc", **params)
        if status != 200:
            self._answer(status, body, "flash", final=True)
        handle = body.get("handle") if isinstance(body, dict) else None
        if not isinstance(handle, int):
            raise FinalError(f"node {self.config.node}: the board sent no transfer handle")
        return handle

    async def _upload(self, handle: int, image: Path, size: int, report: Progress) -> None:
        """POST the image as the one multipart field bmcd reads, reporting bytes sent."""
        loop = asyncio.get_running_loop()

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            with image.open("rb") as f:
                while data := await loop.run_in_executor(None, f.read, CHUNK):
                    sent += len(data)
                    yield data
                    report("upload", sent, size)

        form = aiohttp.MultipartWriter("form-data")
        part = form.append(aiohttp.payload.AsyncIterablePayload(chunks()))
        part.set_content_disposition("form-data", name="file", filename=image.name)
        try:
            async with self._session(long=True) as http:
                status, body = await self._call(
                    http, "POST", f"/api/bmc/upload/{handle}", data=form
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FinalError(f"node {self.config.node}: upload: {exc}") from None
        if status != 200:
            self._answer(status, body, "upload", final=True)

    async def _watch_flash(self, upload: asyncio.Task[None], report: Progress) -> None:
        """Poll the transfer state until Done; stop on an error or a stalled write."""
        rt = self.runtime
        stall = self.config.number("flash_stall")
        last, deadline = -1, rt.clock() + stall
        while True:
            if upload.done():
                upload.result()  # an upload error ends the flash
            status, body = await self._request("GET", "/api/bmc", opt="get", type="flash")
            if status != 200:
                self._answer(status, body, "flash")
            if isinstance(body, dict) and "Error" in body:
                raise FinalError(f"node {self.config.node}: flash failed: {body['Error']}")
            if isinstance(body, dict) and "Done" in body and upload.done():
                upload.result()
                return
            moving = body.get("Transferring") if isinstance(body, dict) else None
            if isinstance(moving, dict):
                written, size = int(moving.get("bytes_written", 0)), int(moving.get("size", 0))
                report("write", written, size)
                if written != last:
                    last, deadline = written, rt.clock() + stall
            if rt.clock() >= deadline:
                raise FinalError(f"node {self.config.node}: flash made no progress in {stall:g} s")
            await rt.sleep(rt.poll_interval)

    async def _abort_flash(self, handle: int) -> None:
        """Best effort after Ctrl-C or a failure: cancel the transfer, power the node off."""
        for step in (
            lambda: self._request("GET", f"/api/bmc/upload/{handle}/cancel"),
            lambda: self._set_power(False),
        ):
            with contextlib.suppress(RetryableError, FinalError):
                await step()


def _sha256(path: Path, size: int, report: Progress) -> str:
    digest, done = hashlib.sha256(), 0
    with path.open("rb") as f:
        while data := f.read(CHUNK):
            digest.update(data)
            done += len(data)
            report("hash", done, size)
    return digest.hexdigest()
