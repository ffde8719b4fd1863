"""The effective node: its profiles merged in order, then its own values.

Rules: a later layer wins for single values; lists append (an item written
`~value` removes an earlier `value`); dicts (tags, facts, power options) merge by key;
power settings and scripts (`pre`, `part`, `post`) merge field by field, so a
node's `post` replaces its profile's while the profile's `pre` stays, and an
empty script removes an inherited one. Each effective value records its origin
(`profile:NAME` or `node`; lists record every layer that added to them), which
`corral node show` prints beside the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.inventory.errors import NotFound
from corral.inventory.models import BootScripts, Node, NodeSettings, PowerSettings, Profile
from corral.inventory.plain import SCALAR_FIELDS

LIST_FIELDS = ("kernel_args", "overlays", "networks")
DICT_FIELDS = ("tags", "facts")
POWER_SCALARS = ("driver", "address", "username", "password", "slot")
SCRIPT_FIELDS = ("pre", "part", "post")
NODE_SOURCE = "node"


@dataclass
class EffectiveNode:
    """A node with every setting resolved, and where each came from."""

    node: Node
    settings: NodeSettings
    origins: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name

    def origin(self, key: str) -> str:
        sources = self.origins.get(key)
        return ",".join(sources) if sources else "default"


def merge_list(base: Iterable[str], layer: Iterable[str]) -> list[str]:
    """Append `layer` to `base`, skipping repeats; `~x` removes `x`."""
    out = list(base)
    for item in layer:
        if item.startswith("~"):
            out = [x for x in out if x != item[1:]]
        elif item not in out:
            out.append(item)
    return out


class _Merger:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {f: [] for f in LIST_FIELDS}
        self.values.update({f: {} for f in DICT_FIELDS})
        self.power: dict[str, Any] = {"options": {}}
        self.scripts: dict[str, str] = {}
        self.origins: dict[str, list[str]] = {}

    def _mark(self, key: str, source: str, append: bool = False) -> None:
        if append:
            self.origins.setdefault(key, []).append(source)
        else:
            self.origins[key] = [source]

    def add(self, source: str, layer: NodeSettings) -> None:
        for name in SCALAR_FIELDS:
            value = getattr(layer, name)
            if value is not None:
                self.values[name] = value
                self._mark(name, source)
        for name in LIST_FIELDS:
            items = getattr(layer, name)
            if items:
                self.values[name] = merge_list(self.values[name], items)
                self._mark(name, source, append=True)
        for name in DICT_FIELDS:
            for key, value in getattr(layer, name).items():
                self.values[name][key] = value
                self._mark(f"{name}.{key}", source)
        self._add_power(source, layer.power)
        for name in SCRIPT_FIELDS:
            script = getattr(layer.scripts, name)
            if script is not None:
                self.scripts[name] = script
                self._mark(f"scripts.{name}", source)

    def _add_power(self, source: str, power: PowerSettings) -> None:
        for name in POWER_SCALARS:
            value = getattr(power, name)
            if value is not None:
                self.power[name] = value
                self._mark(f"power.{name}", source)
        for key, value in power.options.items():
            self.power["options"][key] = value
            self._mark(f"power.options.{key}", source)

    def result(self) -> NodeSettings:
        scripts = BootScripts(**{k: v for k, v in self.scripts.items() if v})
        return NodeSettings(**self.values, power=PowerSettings(**self.power), scripts=scripts)


def effective(node: Node, profiles: Mapping[str, Profile]) -> EffectiveNode:
    """Resolve `node` against the named `profiles` (all must exist)."""
    merger = _Merger()
    for name in node.profiles:
        profile = profiles.get(name)
        if profile is None:
            raise NotFound(f"node {node.name}: profile {name!r} does not exist")
        merger.add(f"profile:{name}", profile)
    merger.add(NODE_SOURCE, node)
    return EffectiveNode(node=node, settings=merger.result(), origins=merger.origins)
