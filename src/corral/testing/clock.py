"""A clock for tests: time moves only when the code under test sleeps.

corral never sleeps on its own where a test would wait for it: the power
drivers take their clock and sleep from `corral.power.Runtime`, and the TFTP
sessions take `now` as an argument. `FakeClock.runtime()` gives a Runtime on
this clock, so a retry schedule of minutes runs in no time and can be read back
from `sleeps`.
"""

from __future__ import annotations

from corral.power.base import Runtime


class FakeClock:
    """Time that moves only when the code under test sleeps (a fake; no real time passes)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Move time on without a sleep (something else took that long)."""
        self.now += seconds

    def runtime(self, **settings: float) -> Runtime:
        """A power-driver Runtime on this clock; `settings` as Runtime's (attempts, backoff...)."""
        return Runtime(sleep=self.sleep, clock=self.clock, **settings)  # type: ignore[arg-type]
