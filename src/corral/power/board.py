"""Board-only actions (`corral board ...`): what a board controller can do besides power.

A driver that declares `Capability.USB`, `FLASH` or `MASS_STORAGE` implements the
matching methods of `BoardActions`; callers check the capability first
(`driver.require(cap)`), so a driver without it is refused at once by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

# progress(stage, done, total): stage is "hash", "upload" or "write"
Progress = Callable[[str, int, int], None]

USB_MODES = ("host", "device", "flash")
USB_ROUTES = ("bmc", "usb-a")


@dataclass(frozen=True)
class FlashResult:
    handle: int
    size: int
    sha256: str
    seconds: float


@dataclass(frozen=True)
class UsbState:
    """Which slot has the board's USB bus, in which mode, on which route."""

    node: str
    mode: str
    route: str


@runtime_checkable
class BoardActions(Protocol):
    async def set_usb(self, mode: str = "device", route: str = "bmc") -> None:
        """Give the board's USB bus to this slot in `mode` on `route`."""

    async def usb_state(self) -> UsbState:
        """The board's USB bus as the controller reports it."""

    async def mass_storage(self) -> None:
        """Expose the module's storage as a USB mass-storage device."""

    async def flash(self, image: Path, progress: Progress | None = None) -> FlashResult:
        """Write `image` to the module; the node is off afterwards."""

    async def uart_read(self) -> str:
        """What the module wrote to its UART since the last read."""

    async def uart_write(self, line: str) -> None:
        """Send one line to the module's UART."""
