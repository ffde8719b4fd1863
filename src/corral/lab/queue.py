"""Powering lab VMs on a few at a time, as many as the machine's cores can carry.

Under TCG every booting VM is a busy CPU thread (iPXE even busy-polls while it
waits), so starting 32 at once makes all of them slow. The queue powers on
`concurrency` VMs, and the next one whenever an earlier one has booted, failed
or run out of time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from corral.actions import Actions
from corral.power.run import Action, run_power, targets_for
from corral.states import BOOTED, FAILED, reached

DONE_STATES = (BOOTED.value, FAILED.value)


@dataclass
class QueueReport:
    started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)  # node -> booted/failed/timeout

    @property
    def failed(self) -> list[str]:
        return [n for n, how in self.finished.items() if how != BOOTED]


def finished_state(row: dict[str, object], since: float, until: str = "booted") -> str | None:
    """`booted` (reached `until`) or `failed` if the node got there after it was powered on."""
    state = str(row.get("state"))
    entered = row.get("since")
    if not isinstance(entered, int | float) or entered < since:
        return None
    if state == FAILED:
        return FAILED.value
    return BOOTED.value if reached(state, until) else None


async def boot_in_waves(
    actions: Actions,
    names: Sequence[str],
    concurrency: int,
    timeout: float = 900.0,
    on_change: Callable[[QueueReport], None] = lambda _: None,
    poll: float = 1.0,
    until: str = "booted",
) -> QueueReport:
    """Power `names` on, `concurrency` at a time, until each reached `until` or failed."""
    report = QueueReport()
    waiting = list(names)
    inv = await asyncio.to_thread(actions.inventory)
    while waiting or len(report.finished) < len(report.started):
        running = [n for n in report.started if n not in report.finished]
        while waiting and len(running) < concurrency:
            name = waiting.pop(0)
            report.started[name] = time.time()
            (result,) = await run_power(targets_for(inv, [name]), Action.ON)
            if not result.ok:  # a VM that cannot be powered on will not boot
                report.finished[name] = f"power on failed: {result.error}"
            running.append(name)
            on_change(report)
        running = [n for n in running if n not in report.finished]
        rows = await asyncio.to_thread(actions.status, running) if running else []
        for row in rows:
            name = str(row["node"])
            how = finished_state(row, report.started[name], until)
            if how is None and time.time() - report.started[name] > timeout:
                how = "timeout"
            if how is not None:
                report.finished[name] = how
                on_change(report)
        await asyncio.sleep(poll)
    return report
