"""Turing Pi 2 boards: the BMC daemon's HTTP API (bmcd, firmware 2.x).

Requests follow the documented API: `GET /api/bmc?opt=get|set&type=T&args`
answers `{"response": [{"result": ...}]}` (`"uart"` instead of `"result"` for
UART reads). Power takes `node1..node4=0|1` (slots count from 1); reset, USB,
mass-storage and UART take `node=0..3`. Authentication: POST
/api/bmc/authenticate with the user and password; the bearer token comes
back in the X-Auth-Token header (and as the session `id` in the body). The
token is shared by the four slots of a board for one run; a 401 gets one
fresh token. The board serves a self-signed certificate, so TLS is not
verified unless `verify_tls=true`.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from corral.power.base import ALL_POWER, Capability, Console, PowerDriver, PowerState, Setting
from corral.power.errors import FinalError, RetryableError, SettingsError

SLOTS = 4
# bmcd's legacy USB modes: (mode, route) -> number
USB_MODES = {("host", "usb-a"): 0, ("device", "usb-a"): 1, ("host", "bmc"): 2, ("device", "bmc"): 3}


class TuringPiDriver(PowerDriver):
    name = "turingpi"
    capabilities = ALL_POWER | {Capability.RESET, Capability.CONSOLE}
    settings = (
        Setting("address", "board URL, e.g. https://turingpi.local", required=True),
        Setting("slot", "node slot on the board, 1-4", required=True),
        Setting("username", "BMC user", default="root"),
        Setting("password", "BMC password", secret=True),
        Setting("verify_tls", "check the board's TLS certificate (true/false)", default="false"),
        Setting("timeout", "seconds to wait for one HTTP answer", default="10"),
    )

    # requests --------------------------------------------------------------------

    @property
    def base(self) -> str:
        address = self.config.need("address").rstrip("/")
        return address if "://" in address else f"https://{address}"

    @property
    def slot(self) -> int:
        text = self.config.need("slot")
        if not text.isdigit() or not 1 <= int(text) <= SLOTS:
            raise SettingsError(f"node {self.config.node}: slot {text!r} is not 1-{SLOTS}")
        return int(text)

    def _session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=self.config.number("timeout"))
        verify = self.config.flag("verify_tls")
        return aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=verify))

    async def _token(self, http: aiohttp.ClientSession, stale: str | None = None) -> str | None:
        """The board's token for this run; a new one if the cached one is `stale`."""
        user, password = self.config.get("username"), self.config.get("password")
        if password is None:
            return None
        key = ("turingpi-token", self.base, user)
        shared = self.runtime.shared
        async with self.runtime.lock(key):
            if key not in shared or (stale is not None and shared[key] == stale):
                shared[key] = await self._authenticate(http, user or "", password)
        return str(shared[key])

    async def _authenticate(self, http: aiohttp.ClientSession, user: str, password: str) -> str:
        url = f"{self.base}/api/bmc/authenticate"
        async with http.post(url, json={"username": user, "password": password}) as resp:
            if resp.status in (401, 403):
                raise FinalError(f"node {self.config.node}: the board refused the credentials")
            if resp.status != 200:
                raise RetryableError(f"node {self.config.node}: authenticate: HTTP {resp.status}")
            token = resp.headers.get("X-Auth-Token")
            if not token:
                body = await resp.json(content_type=None)
                token = body.get("id") if isinstance(body, dict) else None
        if not token:
            raise FinalError(f"node {self.config.node}: the board sent no token")
        return str(token)

    async def api(self, opt: str, type_: str, **args: str) -> Any:
        """One `/api/bmc` call; the `response[0]` object of the answer."""
        params = {"opt": opt, "type": type_, **args}
        try:
            async with self._session() as http:
                status, body = await self._get(http, params)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise RetryableError(f"node {self.config.node}: {self.base}: {exc}") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise RetryableError(f"node {self.config.node}: bad answer: {exc}") from None
        return self._answer(status, body, type_)

    async def _get(self, http: aiohttp.ClientSession, params: dict[str, str]) -> tuple[int, Any]:
        """GET with the board's token; on 401 once more with a new token."""
        stale: str | None = None
        for last in (False, True):
            token = await self._token(http, stale)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.get(f"{self.base}/api/bmc", params=params, headers=headers) as r:
                if r.status == 401 and token and not last:
                    stale = token
                    continue
                if r.status == 401:
                    raise FinalError(f"node {self.config.node}: the board refused the token")
                return r.status, await r.json(content_type=None)
        raise AssertionError("unreachable")

    def _answer(self, status: int, body: Any, type_: str) -> Any:
        try:
            item = body["response"][0]
        except (KeyError, IndexError, TypeError):
            raise RetryableError(f"node {self.config.node}: unexpected answer {body!r}") from None
        if status != 200:
            message = item.get("result", "") if isinstance(item, dict) else ""
            error = FinalError if 400 <= status < 500 else RetryableError
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
        await self.api("set", "reset", node=str(self.slot - 1))

    # board extras ------------------------------------------------------------------------

    async def set_usb(self, mode: str = "device", route: str = "bmc") -> None:
        """Route the board's USB bus to this slot (device: the node is a USB device)."""
        number = USB_MODES.get((mode, route))
        if number is None:
            raise SettingsError(f"USB mode {mode!r} route {route!r}: see {sorted(USB_MODES)}")
        await self.api("set", "usb", node=str(self.slot - 1), mode=str(number))

    async def mass_storage(self) -> None:
        """Put the slot's module in USB mass-storage mode (for flashing eMMC)."""
        await self.api("set", "node_to_msd", node=str(self.slot - 1))

    async def uart_read(self) -> str:
        item = await self.api("get", "uart", node=str(self.slot - 1))
        return str(item.get("uart", ""))

    async def uart_write(self, line: str) -> None:
        await self.api("set", "uart", node=str(self.slot - 1), cmd=line)

    def _console(self) -> Console:
        return Console(attach=self._uart_console, description="Turing Pi UART; Ctrl-D leaves")

    async def _uart_console(self) -> None:
        """Poll the UART buffer to stdout; send each stdin line to the node."""
        loop = asyncio.get_running_loop()

        async def pump_out() -> None:
            while True:
                text = await self.uart_read()
                if text:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                await self.runtime.sleep(self.runtime.poll_interval)

        reader = asyncio.create_task(pump_out())
        try:
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                await self.uart_write(line.rstrip("\r\n"))
        finally:
            reader.cancel()
