"""No power controller: say what a person must do, and do nothing.

Useful for a board with no BMC: `corral power cycle n7` prints "press the
power button of n7" instead of failing, so a reinstall can still be driven
from the same commands.
"""

from __future__ import annotations

from corral.power.base import BOARD_ONLY, Capability, PowerDriver, PowerState, Setting

WORDS = {
    "on": "switch on",
    "off": "switch off",
    "soft-off": "shut down",
    "cycle": "switch off and on again",
    "reset": "press the reset button of",
    "boot-network": "choose a network boot (firmware boot menu) on",
}


class ManualDriver(PowerDriver):
    name = "manual"
    capabilities = frozenset(Capability) - {Capability.CONSOLE} - BOARD_ONLY
    settings = (
        Setting("address", "where the machine is, shown in the instructions"),
        Setting("slot", "slot or position, shown in the instructions"),
        Setting("instructions", "extra text for the person, e.g. 'rack 3, top shelf'"),
    )

    instructions: str | None = None

    def _say(self, action: str) -> None:
        c = self.config
        where = ", ".join(
            x for x in (c.get("address"), c.get("slot") and f"slot {c.get('slot')}") if x
        )
        text = f"by hand: {WORDS[action]} {c.node}"
        text += f" ({where})" if where else ""
        text += f"; {c.get('instructions')}" if c.get("instructions") else ""
        self.instructions = text

    async def _status(self) -> PowerState:
        return PowerState.UNKNOWN

    async def _on(self) -> None:
        self._say("on")

    async def _off(self) -> None:
        self._say("off")

    async def _soft_off(self) -> None:
        self._say("soft-off")

    async def _cycle(self) -> None:
        self._say("cycle")

    async def _reset(self) -> None:
        self._say("reset")

    async def _boot_network_once(self) -> None:
        self._say("boot-network")
