"""Power control: one driver interface for rack BMCs, board controllers and VMs.

    from corral.power import Action, run_power, targets_for
    results = asyncio.run(run_power(targets_for(inv, names), Action.STATUS))

Drivers (entry points in the `corral.power` group): ipmi, redfish, turingpi,
clusterhat, qemu, ssh, manual. Board-only actions (USB, flash, mass storage):
`corral.power.board`. The interface and its contract: `corral.power.base`;
the errors a caller catches: `corral.power.errors`.
"""

from corral.power.base import Capability, Console, PowerDriver, PowerState, Runtime, Setting
from corral.power.errors import FinalError, NotSupported, PowerError, RetryableError, SettingsError
from corral.power.registry import drivers, make_driver
from corral.power.run import Action, PowerResult, PowerTarget, all_ok, run_power, targets_for

__all__ = [
    "Action",
    "Capability",
    "Console",
    "FinalError",
    "NotSupported",
    "PowerDriver",
    "PowerError",
    "PowerResult",
    "PowerState",
    "PowerTarget",
    "RetryableError",
    "Runtime",
    "Setting",
    "SettingsError",
    "all_ok",
    "drivers",
    "make_driver",
    "run_power",
    "targets_for",
]
