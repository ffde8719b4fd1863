"""`fake`: a power driver with no machine behind it, for tests of code that drives power.

It is registered as the `fake` entry point of the `corral.power` group, so a
node with `--power-driver fake` works through every path a real driver takes
(`corral power`, the registry, the retry loop, secret scrubbing). Its machines
live in memory, one per `address`, and keep their state between driver
objects of one process (`corral power on` then `status` in one test see the
same machine). `failures` scripts the errors its next calls raise, to test
retries. Nothing real is switched: use it where no BMC can run; ipmi_sim and
sushy-tools are the real peers for the ipmi and redfish drivers.
"""

from __future__ import annotations

from typing import ClassVar

from corral.power.base import ALL_POWER, DriverConfig, PowerDriver, PowerState, Runtime, Setting
from corral.power.errors import SettingsError


class FakeDriver(PowerDriver):
    """A fake power controller: on/off/cycle/status of an imaginary machine."""

    name = "fake"
    capabilities = ALL_POWER
    settings = (
        Setting("address", "any label; one imaginary machine per address", required=True),
        Setting("password", "accepted and never used (it is scrubbed from errors)", secret=True),
        Setting("initial", "the power state a new imaginary machine starts in", default="off"),
    )
    # address -> state: the imaginary machines of this process
    machines: ClassVar[dict[str, PowerState]] = {}

    def __init__(self, config: DriverConfig, runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.failures: list[Exception] = []
        self.calls = 0

    @property
    def state(self) -> PowerState:
        try:
            initial = PowerState(self.config.get("initial") or "off")
        except ValueError:
            raise SettingsError(f"node {self.config.node}: initial must be on or off") from None
        return self.machines.setdefault(self.config.need("address"), initial)

    @state.setter
    def state(self, value: PowerState) -> None:
        self.machines[self.config.need("address")] = value

    def _attempt(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    async def _on(self) -> None:
        self._attempt()
        self.state = PowerState.ON

    async def _off(self) -> None:
        self._attempt()
        self.state = PowerState.OFF

    async def _status(self) -> PowerState:
        return self.state

    @classmethod
    def forget(cls) -> None:
        """Forget every imaginary machine (between tests)."""
        cls.machines.clear()
