"""Finding drivers: each is an entry point in the `corral.power` group.

A third-party package adds a driver by declaring
`[project.entry-points."corral.power"] mydriver = "pkg.module:MyDriver"`;
corral keeps no hand-written list.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from corral.inventory.models import PowerSettings
from corral.power.base import PowerDriver, Runtime
from corral.power.errors import SettingsError

GROUP = "corral.power"


@cache
def drivers() -> dict[str, type[PowerDriver]]:
    """Every installed driver class by name."""
    found: dict[str, type[PowerDriver]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, PowerDriver):
            found[ep.name] = cls
    return found


def driver_class(name: str | None, node: str = "?") -> type[PowerDriver]:
    if not name:
        raise SettingsError(
            f"node {node} has no power driver: corral node set {node} --power-driver DRIVER"
        )
    cls = drivers().get(name)
    if cls is None:
        known = ", ".join(sorted(drivers())) or "none installed"
        raise SettingsError(f"node {node}: unknown power driver {name!r} (known: {known})")
    return cls


def make_driver(node: str, power: PowerSettings, runtime: Runtime | None = None) -> PowerDriver:
    """The driver for a node's effective power settings, its settings checked."""
    return driver_class(power.driver, node).from_settings(node, power, runtime)
