"""The one power-driver interface: what every driver promises, and the retry loop.

A driver overrides the `_on`, `_off`, ... hooks; callers use `on`, `off`, ...,
which check the capability, retry `RetryableError` with exponential backoff
and never sleep on their own: time comes from the injected `Runtime`, so tests
run a retry schedule in no time. Settings are declared as data (`Setting`):
that gives the validation (unknown or missing keys are named), the help text
and the list of secret values scrubbed from every message a driver raises.
"""

from __future__ import annotations

import asyncio
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from corral.inventory.models import PowerSettings
from corral.power.errors import FinalError, NotSupported, RetryableError, SettingsError

T = TypeVar("T")
SCRUBBED = "***"
FIELDS = ("address", "username", "password", "slot")


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class Capability(enum.StrEnum):
    """What a driver can do; `corral power` refuses the rest before trying."""

    ON = "on"
    OFF = "off"
    SOFT_OFF = "soft-off"
    CYCLE = "cycle"
    RESET = "reset"
    STATUS = "status"
    BOOT_NETWORK = "boot-network"
    CONSOLE = "console"
    # board-only actions (`corral board ...`): a board controller that owns the slot
    USB = "usb"
    FLASH = "flash"
    MASS_STORAGE = "mass-storage"


ALL_POWER = frozenset({Capability.ON, Capability.OFF, Capability.CYCLE, Capability.STATUS})
BOARD_ONLY = frozenset({Capability.USB, Capability.FLASH, Capability.MASS_STORAGE})


@dataclass(frozen=True)
class Setting:
    """One driver setting: a PowerSettings field (address, username, password, slot)
    or a key of `options`. `secret` values are scrubbed from messages."""

    name: str
    help: str
    required: bool = False
    secret: bool = False
    default: str | None = None

    @property
    def is_field(self) -> bool:
        return self.name in FIELDS


@dataclass(frozen=True)
class DriverConfig:
    """A node's power settings, checked against a driver's declared settings."""

    node: str
    values: Mapping[str, str]
    secrets: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def need(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            raise SettingsError(f"node {self.node}: power setting {name!r} is required")
        return value

    def number(self, name: str) -> float:
        text = self.need(name)
        try:
            return float(text)
        except ValueError:
            raise SettingsError(f"node {self.node}: {name}={text!r} is not a number") from None

    def integer(self, name: str, low: int, high: int) -> int:
        """A whole number setting in low..high (a board slot), or an error naming it."""
        text = self.need(name)
        if not text.isdigit() or not low <= int(text) <= high:
            raise SettingsError(f"node {self.node}: {name} {text!r} is not {low}-{high}")
        return int(text)

    def flag(self, name: str) -> bool:
        return (self.values.get(name) or "").lower() in ("1", "true", "yes", "on")

    def scrub(self, text: str) -> str:
        """`text` with every secret value replaced by ***."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, SCRUBBED)
        return text


# Settings every driver takes: they describe the node's console, not how to drive it.
COMMON_SETTINGS = (
    Setting("console_log", "a file logging this node's serial console (the dashboard shows it)"),
)


def configure(node: str, power: PowerSettings, declared: Iterable[Setting]) -> DriverConfig:
    """Check `power` against `declared` (and `COMMON_SETTINGS`): unknown and missing keys
    are named."""
    settings = {s.name: s for s in (*declared, *COMMON_SETTINGS)}
    raw: dict[str, str] = {}
    for name in FIELDS:
        value = getattr(power, name)
        if value is not None:
            raw[name] = _text(value)
    raw.update(power.options)
    unknown = sorted(set(raw) - set(settings))
    if unknown:
        known = ", ".join(sorted(settings)) or "none"
        raise SettingsError(
            f"node {node}: driver {power.driver} takes no setting {unknown[0]!r} (known: {known})"
        )
    values = {n: s.default for n, s in settings.items() if s.default is not None}
    values.update(raw)
    missing = [n for n, s in settings.items() if s.required and n not in values]
    if missing:
        raise SettingsError(f"node {node}: driver {power.driver} needs setting {missing[0]!r}")
    secrets = tuple(values[n] for n, s in settings.items() if s.secret and n in values)
    return DriverConfig(node=node, values=values, secrets=secrets)


def _text(value: Any) -> str:
    get = getattr(value, "get_secret_value", None)
    return str(get() if get else value)


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass
class Runtime:
    """Time and shared state for drivers, injected so tests never really sleep.

    `shared` holds connections that several nodes reuse (a Redfish service
    with many systems, a Turing Pi board with four slots) for one run.
    """

    sleep: Callable[[float], Awaitable[None]] = _real_sleep
    clock: Callable[[], float] = time.monotonic
    attempts: int = 3
    backoff: float = 0.5
    wait_timeout: float = 30.0
    poll_interval: float = 0.5
    shared: dict[Any, Any] = field(default_factory=dict)
    locks: dict[Any, asyncio.Lock] = field(default_factory=dict)

    def lock(self, key: Any) -> asyncio.Lock:
        """One lock per key and event loop (a runtime may outlive one `asyncio.run`)."""
        return self.locks.setdefault((id(asyncio.get_running_loop()), key), asyncio.Lock())


class PowerDriver(ABC):
    """A power controller for one node.

    Subclasses declare `name`, `capabilities` and `settings`, and override the
    hooks of the capabilities they declare. Hooks raise `RetryableError` for
    transient failures and `FinalError` otherwise; they never retry or sleep
    themselves (waiting for a state uses `wait_for`, which uses the runtime).
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, config: DriverConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or Runtime()

    @classmethod
    def from_settings(
        cls, node: str, power: PowerSettings, runtime: Runtime | None = None
    ) -> PowerDriver:
        return cls(configure(node, power, cls.settings), runtime)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node={self.config.node}>"

    # public actions: capability check + retry ----------------------------------

    async def on(self) -> None:
        """Power the node on; returns once the controller reports it on.

        :raises NotSupported: the driver cannot power on.
        :raises PowerError: the controller failed (after retries if retryable).
        """
        await self._do(Capability.ON, self._on)

    async def off(self) -> None:
        """Power the node off at once (hard off); returns once it is off."""
        await self._do(Capability.OFF, self._off)

    async def soft_off(self) -> None:
        """Ask the operating system to shut down (ACPI, ssh poweroff); does not wait."""
        await self._do(Capability.SOFT_OFF, self._soft_off)

    async def cycle(self) -> None:
        """Power off, then on (from off: just on)."""
        await self._do(Capability.CYCLE, self._cycle)

    async def reset(self) -> None:
        """Warm reset without a power-off (or the closest the hardware has)."""
        await self._do(Capability.RESET, self._reset)

    async def status(self) -> PowerState:
        """The power state as the controller reports it."""
        return await self._do(Capability.STATUS, self._status)

    async def boot_network_once(self) -> None:
        """Make the next boot (only) a network boot."""
        await self._do(Capability.BOOT_NETWORK, self._boot_network_once)

    def console(self) -> Console:
        """How to attach to the node's serial console.

        :raises NotSupported: the driver has no console.
        """
        self._check(Capability.CONSOLE)
        return self._console()

    def require(self, cap: Capability) -> None:
        """Refuse at once, before any request, what this driver cannot do.

        :raises NotSupported: "driver X cannot <cap> (node N)".
        """
        self._check(cap)

    # helpers for drivers ---------------------------------------------------------

    async def wait_for(self, want: PowerState, timeout: float | None = None) -> None:
        """Poll `_status` until it reports `want`; a bounded wait on the runtime's clock.

        :raises RetryableError: the state did not arrive in time.
        """
        rt = self.runtime
        deadline = rt.clock() + (rt.wait_timeout if timeout is None else timeout)
        while True:
            if await self._status() == want:
                return
            if rt.clock() >= deadline:
                raise RetryableError(f"node {self.config.node} did not report {want} in time")
            await rt.sleep(rt.poll_interval)

    # hooks -------------------------------------------------------------------------

    async def _on(self) -> None:
        raise NotSupported(self._unsupported(Capability.ON))

    async def _off(self) -> None:
        raise NotSupported(self._unsupported(Capability.OFF))

    async def _soft_off(self) -> None:
        raise NotSupported(self._unsupported(Capability.SOFT_OFF))

    async def _cycle(self) -> None:
        """Default cycle: off (if on), wait until off, on."""
        if await self._status() != PowerState.OFF:
            await self._off()
            await self.wait_for(PowerState.OFF)
        await self._on()

    async def _reset(self) -> None:
        raise NotSupported(self._unsupported(Capability.RESET))

    @abstractmethod
    async def _status(self) -> PowerState: ...

    async def _boot_network_once(self) -> None:
        raise NotSupported(self._unsupported(Capability.BOOT_NETWORK))

    def _console(self) -> Console:
        raise NotSupported(self._unsupported(Capability.CONSOLE))

    # internals -----------------------------------------------------------------------

    def _unsupported(self, cap: Capability) -> str:
        return f"driver {self.name} cannot {cap} (node {self.config.node})"

    def _check(self, cap: Capability) -> None:
        if cap not in self.capabilities:
            raise NotSupported(self._unsupported(cap))

    async def _do(self, cap: Capability, hook: Callable[[], Awaitable[T]]) -> T:
        self._check(cap)
        rt = self.runtime
        delay = rt.backoff
        for attempt in range(1, rt.attempts + 1):
            try:
                return await hook()
            except RetryableError as exc:
                if attempt == rt.attempts:
                    raise RetryableError(self.config.scrub(str(exc))) from None
            except FinalError as exc:
                raise type(exc)(self.config.scrub(str(exc))) from None
            except (OSError, TimeoutError) as exc:
                if attempt == rt.attempts:
                    raise RetryableError(
                        self.config.scrub(f"{type(exc).__name__}: {exc}")
                    ) from None
            await rt.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Console:
    """How to reach a serial console: run a program, bridge a unix socket, or a
    driver-specific coroutine (`attach`) that bridges stdin/stdout itself."""

    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    unix_socket: str | None = None
    attach: Callable[[], Coroutine[Any, Any, None]] | None = None
    description: str = ""


BLOCKING_POOL: ContextVar[Executor | None] = ContextVar("corral_power_pool", default=None)


async def run_blocking(func: Callable[[], T]) -> T:
    """Run a blocking driver call on the pool `run_power` sized for its concurrency.

    A context variable, not the loop's default executor: a caller's event loop
    (the lab, `corral serve`) must keep its own executor after a power run.
    """
    return await asyncio.get_running_loop().run_in_executor(BLOCKING_POOL.get(), func)
