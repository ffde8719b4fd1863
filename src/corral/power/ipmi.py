"""IPMI over LAN (RMCP+, `ipmitool -I lanplus`): rack servers' BMCs.

The password goes to ipmitool through the environment (`-E` reads
IPMI_PASSWORD), never on the command line, where `ps` would show it. The
cipher suite is given (`-C`, default 3) because asking the BMC for its list
costs a 10 s timeout on BMCs that do not answer that request.
"""

from __future__ import annotations

import asyncio
import os

from corral.power.base import ALL_POWER, Capability, Console, PowerDriver, PowerState, Setting
from corral.power.errors import FinalError, RetryableError

DEFAULT_PORT = 623
# ipmitool's words for failures that trying again will not fix
FINAL_MARKERS = (
    "unauthorized name",
    "rakp 2 hmac is invalid",
    "rakp 2 message indicates an error",
    "invalid user name",
    "insufficient privilege",
    "invalid authentication algorithm",
    "invalid command",
)


class IpmiDriver(PowerDriver):
    name = "ipmi"
    capabilities = ALL_POWER | {
        Capability.SOFT_OFF,
        Capability.RESET,
        Capability.BOOT_NETWORK,
        Capability.CONSOLE,
    }
    settings = (
        Setting("address", "BMC host or host:port (port 623 by default)", required=True),
        Setting("username", "BMC user", default="admin"),
        Setting("password", "BMC password", secret=True, default=""),
        Setting("cipher_suite", "RMCP+ cipher suite (ipmitool -C)", default="3"),
        Setting("privilege", "privilege level (ipmitool -L)", default="ADMINISTRATOR"),
        Setting("timeout", "seconds ipmitool waits per request (-N)", default="2"),
        Setting("boot_mode", "efi to request a UEFI network boot", default="legacy"),
        Setting("ipmitool", "path of the ipmitool program", default="ipmitool"),
    )

    def base_argv(self) -> list[str]:
        cfg = self.config
        host, _, port = cfg.need("address").rpartition(":")
        if not host or not port.isdigit():
            host, port = cfg.need("address"), str(DEFAULT_PORT)
        return [
            cfg.need("ipmitool"),
            *("-I", "lanplus", "-H", host, "-p", port),
            *("-U", cfg.need("username"), "-E"),
            *("-C", cfg.need("cipher_suite"), "-L", cfg.need("privilege")),
            *("-N", cfg.need("timeout"), "-R", "1"),
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "IPMI_PASSWORD": self.config.get("password") or ""}

    async def ipmitool(self, *args: str) -> str:
        """Run one ipmitool command; its stdout, or a classified error."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.base_argv(),
                *args,
                env=self.env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise FinalError("ipmitool is not installed (apt-get install ipmitool)") from None
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise _classify(err.decode(errors="replace"), self.config.node)
        return out.decode(errors="replace")

    async def _status(self) -> PowerState:
        out = (await self.ipmitool("chassis", "power", "status")).lower()
        if "is on" in out:
            return PowerState.ON
        if "is off" in out:
            return PowerState.OFF
        return PowerState.UNKNOWN

    async def _on(self) -> None:
        await self.ipmitool("chassis", "power", "on")
        await self.wait_for(PowerState.ON)

    async def _off(self) -> None:
        await self.ipmitool("chassis", "power", "off")
        await self.wait_for(PowerState.OFF)

    async def _soft_off(self) -> None:
        await self.ipmitool("chassis", "power", "soft")

    async def _cycle(self) -> None:
        # IPMI refuses `power cycle` on a node that is off: then it is just `on`
        if await self._status() == PowerState.OFF:
            await self._on()
        else:
            await self.ipmitool("chassis", "power", "cycle")

    async def _reset(self) -> None:
        await self.ipmitool("chassis", "power", "reset")

    async def _boot_network_once(self) -> None:
        extra = ["options=efiboot"] if self.config.get("boot_mode") == "efi" else []
        await self.ipmitool("chassis", "bootdev", "pxe", *extra)

    def _console(self) -> Console:
        return Console(
            argv=(*self.base_argv(), "sol", "activate"),
            env={"IPMI_PASSWORD": self.config.get("password") or ""},
            description="IPMI serial-over-LAN; type ~. to leave",
        )


def _classify(stderr: str, node: str) -> Exception:
    lines = [
        line
        for line in stderr.strip().splitlines()
        if line and "cipher suites" not in line.lower()  # noise when -C is given
    ]
    text = "; ".join(lines[-2:]) or "ipmitool failed"
    low = text.lower()
    if any(marker in low for marker in FINAL_MARKERS):
        return FinalError(f"node {node}: BMC refused: {text}")
    return RetryableError(f"node {node}: {text}")
