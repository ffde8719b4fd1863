"""Running one power action on many nodes at once, with a concurrency limit.

One node's failure never stops the others: each result carries its own error
(already scrubbed of secrets). Blocking drivers (sushy) run in a thread pool
sized to the concurrency, so the limit is the same for every driver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from corral.inventory.index import Inventory
from corral.inventory.models import PowerSettings
from corral.inventory.ops import get
from corral.power.base import (
    BLOCKING_POOL,
    BOARD_ONLY,
    Capability,
    PowerDriver,
    PowerState,
    Runtime,
)
from corral.power.errors import NotSupported, PowerError
from corral.power.registry import make_driver

DEFAULT_CONCURRENCY = 64


# What `corral power` can be asked to do is what a driver can do: one enum, under
# the name the runner has always used. `console` is a capability but not a power
# action (`corral console` attaches to it); `perform` refuses it by name.
Action = Capability


@dataclass(frozen=True)
class PowerTarget:
    node: str
    power: PowerSettings


@dataclass(frozen=True)
class PowerResult:
    """One node's outcome: `result` is the state for status, `ok`/`failed` otherwise."""

    node: str
    driver: str | None
    action: str
    result: str
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def targets_for(inv: Inventory, names: Sequence[str]) -> list[PowerTarget]:
    """Each named node with its effective (profile-merged) power settings."""
    for name in names:
        get(inv.nodes, name, "node")
    return [PowerTarget(n, inv.effective(n).settings.power) for n in names]


async def run_power(
    targets: Sequence[PowerTarget],
    action: Action,
    concurrency: int = DEFAULT_CONCURRENCY,
    runtime: Runtime | None = None,
) -> list[PowerResult]:
    """Run `action` on every target, at most `concurrency` at a time; results in order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    rt = runtime or Runtime()
    gate = asyncio.Semaphore(concurrency)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="power") as pool:
        token = BLOCKING_POOL.set(pool)  # the tasks below copy this context
        try:

            async def one(target: PowerTarget) -> PowerResult:
                async with gate:
                    return await _run_one(target, action, rt)

            return list(await asyncio.gather(*(one(t) for t in targets)))
        finally:
            BLOCKING_POOL.reset(token)


async def _run_one(target: PowerTarget, action: Action, rt: Runtime) -> PowerResult:
    start = time.monotonic()
    driver_name = target.power.driver
    try:
        driver = make_driver(target.node, target.power, rt)
        result = await perform(driver, action)
        error = None
    except PowerError as exc:
        result, error = "failed", str(exc)
    except Exception as exc:  # a driver bug must not stop the other nodes
        result, error = "failed", f"internal error: {type(exc).__name__}"
    return PowerResult(
        target.node, driver_name, str(action), result, error, round(time.monotonic() - start, 3)
    )


async def perform(driver: PowerDriver, action: Action) -> str:
    """Do `action` with `driver`; the text for the result column."""
    if action == Action.STATUS:
        return str(await driver.status())
    steps: dict[Capability, Callable[[], Awaitable[None]]] = {
        Action.ON: driver.on,
        Action.OFF: driver.off,
        Action.SOFT_OFF: driver.soft_off,
        Action.CYCLE: driver.cycle,
        Action.RESET: driver.reset,
        Action.BOOT_NETWORK: driver.boot_network_once,
    }
    step = steps.get(action)
    if step is None:
        where = f"corral board {action}" if action in BOARD_ONLY else f"corral {action}"
        raise NotSupported(f"{action} is not a power action (use `{where}`)")
    await step()
    note = getattr(driver, "instructions", None)
    return str(note) if note else "ok"


def all_ok(results: Sequence[PowerResult]) -> bool:
    return all(r.ok for r in results)


__all__ = ["Action", "PowerResult", "PowerState", "PowerTarget", "run_power", "targets_for"]
