"""Cluster HAT: per-slot power for the four Pi Zeros on a controller Pi's HAT.

Two ways to reach the power switches (setting `mode`):

- `gpio` (default): corral runs on the controller Pi and sets the lines itself
  through the Linux GPIO character device (libgpiod's Python binding, `gpiod`).
  On a Cluster HAT v1.x the slots P1-P4 are BCM lines 6, 13, 19, 26 of
  /dev/gpiochip0, active high (line 5 is the ALERT LED). On v2.x/3.x they sit on
  bits 0-3 of the XRA1200 I/O expander at I2C 0x20; when a kernel driver exposes
  it as a gpiochip, give that `chip` and `lines=0,1,2,3`. corral releases the
  line after each call; the kernel does not promise what a released line does
  on every chip (the Pi's own pin controller keeps driving the value): where a
  slot drops when corral exits, use `clusterctrl` mode.
- `clusterctrl`: run the HAT's own `clusterctrl on|off pN` and read `clusterctrl
  status` (`pN:0|1` lines), on the controller over ssh (`address`), or locally
  when no address is given. This works for every HAT revision.

Keys only over ssh (BatchMode), as the ssh driver: no password to put anywhere.
"""

from __future__ import annotations

import asyncio
import shlex
from typing import Protocol

from corral.power.base import ALL_POWER, PowerDriver, PowerState, Setting, run_blocking
from corral.power.errors import FinalError, RetryableError, SettingsError

SLOTS = 4
V1_LINES = "6,13,19,26"  # BCM lines of P1-P4 on a Cluster HAT v1.x


class Lines(Protocol):
    """Read and drive output lines of one GPIO chip."""

    def get(self, line: int) -> bool: ...

    def set(self, line: int, on: bool) -> None: ...


class GpiodLines:
    """The GPIO character device through libgpiod (each call requests and releases)."""

    def __init__(self, chip: str) -> None:
        self.chip = chip

    def get(self, line: int) -> bool:
        import gpiod
        from gpiod.line import Direction, Value

        settings = gpiod.LineSettings(direction=Direction.AS_IS)
        with gpiod.request_lines(self.chip, {line: settings}, consumer="corral") as req:
            return bool(req.get_value(line) == Value.ACTIVE)

    def set(self, line: int, on: bool) -> None:
        import gpiod
        from gpiod.line import Direction, Value

        value = Value.ACTIVE if on else Value.INACTIVE
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=value)
        with gpiod.request_lines(self.chip, {line: settings}, consumer="corral"):
            pass


class ClusterHatDriver(PowerDriver):
    name = "clusterhat"
    capabilities = ALL_POWER
    settings = (
        Setting("slot", "Pi Zero slot on the HAT, 1-4 (P1-P4)", required=True),
        Setting("mode", "gpio (lines of the controller) or clusterctrl", default="gpio"),
        Setting("chip", "gpio mode: GPIO character device", default="/dev/gpiochip0"),
        Setting("lines", "gpio mode: lines of P1-P4, comma-separated", default=V1_LINES),
        Setting("address", "clusterctrl mode: controller host for ssh (empty: run here)"),
        Setting("username", "clusterctrl mode: ssh user", default="pi"),
        Setting("identity_file", "clusterctrl mode: ssh private key (ssh -i)"),
        Setting("clusterctrl", "clusterctrl mode: the program", default="clusterctrl"),
        Setting("ssh", "clusterctrl mode: path of ssh", default="ssh"),
        Setting("timeout", "clusterctrl mode: ssh connect timeout, seconds", default="5"),
    )

    def open_lines(self, chip: str) -> Lines:
        """The chip's lines; a test replaces this where no GPIO chip exists."""
        return GpiodLines(chip)

    @property
    def slot(self) -> int:
        return self.config.integer("slot", 1, SLOTS)

    @property
    def mode(self) -> str:
        mode = self.config.need("mode")
        if mode not in ("gpio", "clusterctrl"):
            raise SettingsError(f"node {self.config.node}: mode {mode!r} is not gpio|clusterctrl")
        return mode

    def line(self) -> int:
        parts = [p.strip() for p in self.config.need("lines").split(",")]
        if len(parts) != SLOTS or not all(p.isdigit() for p in parts):
            raise SettingsError(
                f"node {self.config.node}: lines={self.config.need('lines')!r} must be "
                f"{SLOTS} line numbers, e.g. {V1_LINES}"
            )
        return int(parts[self.slot - 1])

    # gpio mode -----------------------------------------------------------------------

    async def _gpio(self, on: bool | None) -> bool:
        chip, line = self.config.need("chip"), self.line()
        lines = self.open_lines(chip)

        def work() -> bool:
            if on is not None:
                lines.set(line, on)
            return lines.get(line)

        try:
            return await run_blocking(work)
        except ImportError:
            raise FinalError("gpio mode needs gpiod: pip install 'corral[boards]'") from None
        except PermissionError:
            raise FinalError(f"{chip}: permission denied (run as root or in group gpio)") from None
        except FileNotFoundError:
            raise FinalError(f"{chip} does not exist: is this the controller Pi?") from None

    # clusterctrl mode ----------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        c = self.config
        command = [c.need("clusterctrl"), *args]
        host = c.get("address")
        if not host:
            return command
        key = c.get("identity_file")
        return [
            c.need("ssh"),
            *("-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(c.number('timeout'))}"),
            *(("-i", key) if key else ()),
            *("-l", c.need("username"), host, "--"),
            shlex.join(command),
        ]

    async def clusterctrl(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(*args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise FinalError(f"{exc.filename} is not installed") from None
        out, err = await proc.communicate()
        text = (err or out).decode(errors="replace").strip().splitlines()
        if proc.returncode == 255 and self.config.get("address"):
            raise RetryableError(f"node {self.config.node}: ssh: {text[-1] if text else ''}")
        if proc.returncode != 0 or out.startswith(b"ERROR"):
            message = text[-1] if text else f"exit {proc.returncode}"
            raise FinalError(f"node {self.config.node}: clusterctrl {' '.join(args)}: {message}")
        return out.decode(errors="replace")

    async def _clusterctrl_state(self) -> PowerState:
        for row in (await self.clusterctrl("status")).splitlines():
            key, _, value = row.partition(":")
            if key.strip() == f"p{self.slot}":
                return {"1": PowerState.ON, "0": PowerState.OFF}.get(
                    value.strip(), PowerState.UNKNOWN
                )
        return PowerState.UNKNOWN

    # hooks -----------------------------------------------------------------------------

    async def _status(self) -> PowerState:
        if self.mode == "gpio":
            return PowerState.ON if await self._gpio(None) else PowerState.OFF
        return await self._clusterctrl_state()

    async def _switch(self, on: bool) -> None:
        if self.mode == "gpio":
            await self._gpio(on)
        else:
            await self.clusterctrl("on" if on else "off", f"p{self.slot}")
        await self.wait_for(PowerState.ON if on else PowerState.OFF)

    async def _on(self) -> None:
        await self._switch(True)

    async def _off(self) -> None:
        await self._switch(False)
