"""QEMU virtual machines through QMP, for the lab and the tests.

The QMP unix socket is `address` (or the option `qmp`). QEMU's states map to
power like this: running is on; paused, prelaunch (`-S`), shutdown and no
QEMU listening at all are off. `on` boots the VM as a power-on boots a machine:
from a VM that was stopped or shut down it resets first, then continues (`cont`;
a VM held with `-S` just starts); `off` stops its
CPUs at once (`stop`, or `quit` when `off=quit` ends the process), `soft-off`
presses the ACPI button (`system_powerdown`), `reset` is `system_reset`.
The serial console is a unix socket given by the option `serial`
(`-serial unix:PATH,server,nowait`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from corral.power.base import ALL_POWER, Capability, Console, PowerDriver, PowerState, Setting
from corral.power.errors import FinalError, NotSupported, RetryableError, SettingsError

RUNNING = {"running"}
LIMIT = 1 << 20


class QmpError(FinalError):
    """QEMU answered a command with an error."""


async def qmp(path: str, command: str, timeout: float = 5.0, **arguments: Any) -> Any:
    """Connect, negotiate capabilities, run one command; its `return` value."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_unix_connection(path, limit=LIMIT), timeout
    )
    try:
        await asyncio.wait_for(_read(reader), timeout)  # greeting
        for name, args in (("qmp_capabilities", {}), (command, arguments)):
            message: dict[str, Any] = {"execute": name}
            if args:
                message["arguments"] = args
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()
            answer = await asyncio.wait_for(_reply(reader), timeout)
        return answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise RetryableError("QEMU closed the QMP connection")
    data: dict[str, Any] = json.loads(line)
    return data


async def _reply(reader: asyncio.StreamReader) -> Any:
    """The next `return` or `error`, skipping asynchronous events."""
    while True:
        data = await _read(reader)
        if "return" in data:
            return data["return"]
        if "error" in data:
            raise QmpError(data["error"].get("desc", "QMP error"))


class QemuDriver(PowerDriver):
    name = "qemu"
    capabilities = ALL_POWER | {Capability.SOFT_OFF, Capability.RESET, Capability.CONSOLE}
    settings = (
        Setting("address", "path of the VM's QMP unix socket"),
        Setting("qmp", "path of the QMP socket (if address is not used for it)"),
        Setting("serial", "path of the serial console's unix socket"),
        Setting("off", "stop (pause the VM) or quit (end QEMU)", default="stop"),
    )

    @property
    def socket(self) -> str:
        path = self.config.get("qmp") or self.config.get("address")
        if not path:
            raise SettingsError(f"node {self.config.node}: set the QMP socket path as address")
        return path

    async def command(self, name: str, **arguments: Any) -> Any:
        try:
            return await qmp(self.socket, name, **arguments)
        except (FileNotFoundError, ConnectionRefusedError):
            raise FinalError(f"node {self.config.node}: no QEMU listens on {self.socket}") from None

    async def _status(self) -> PowerState:
        try:
            info = await qmp(self.socket, "query-status")
        except (FileNotFoundError, ConnectionRefusedError):
            return PowerState.OFF  # QEMU is not running
        return PowerState.ON if info.get("status") in RUNNING else PowerState.OFF

    async def _on(self) -> None:
        info = await self.command("query-status")
        if info.get("status") in ("shutdown", "paused"):  # off: power on means a fresh boot
            await self.command("system_reset")
        await self.command("cont")

    async def _off(self) -> None:
        if self.config.get("off") == "quit":
            await self.command("quit")
        else:
            await self.command("stop")

    async def _soft_off(self) -> None:
        await self.command("system_powerdown")

    async def _reset(self) -> None:
        await self.command("system_reset")

    async def _cycle(self) -> None:
        await self.command("stop")
        await self.command("system_reset")
        await self.command("cont")

    def _console(self) -> Console:
        path = self.config.get("serial")
        if not path:
            raise NotSupported(f"node {self.config.node}: set the power option serial=PATH")
        return Console(unix_socket=path, description="QEMU serial socket; Ctrl-] leaves")
