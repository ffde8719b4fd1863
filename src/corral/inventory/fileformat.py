"""The cluster file (YAML or JSON): read with line numbers, written deterministically.

Reading composes the YAML node tree first so that a validation error can point
at `file:line` of the offending key. Node entries may name a hostlist range
(`name: n[001-064]`), which expands into one node per name. Writing sorts
records by name and keys in model order, and leaves out defaults and secrets,
so `export | apply | export` is byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from corral.inventory.bulk import gc_paused
from corral.inventory.errors import InventoryError
from corral.inventory.hostlists import expand
from corral.inventory.models import Cluster
from corral.inventory.yamlload import safe_load

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _NodeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _NodeLoader  # type: ignore[assignment]

Format = Literal["yaml", "json"]
Path_ = tuple[str | int, ...]


def load_cluster(text: str, filename: str = "<input>") -> Cluster:
    """Parse and validate a cluster file; errors say `file:line: field: problem`."""
    with gc_paused():
        return _load_cluster(text, filename)


def _load_cluster(text: str, filename: str) -> Cluster:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(f"{where}: malformed YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InventoryError(f"{filename}: expected a mapping with networks/profiles/nodes")
    data, origin = _expand_ranges(data, filename)
    try:
        return Cluster.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: Path_ = tuple(err["loc"])
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            loc = ("nodes", origin[loc[1]], *loc[2:])
        line = _nearest_line(_line_numbers(text), loc)
        where = f"{filename}:{line}" if line else filename
        field = ".".join(str(x) for x in loc)
        msg = err["msg"].removeprefix("Value error, ")
        bad = err.get("input")
        shown = "" if isinstance(bad, dict | list) or bad is None else f" (got {bad!r})"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise InventoryError(f"{where}: {field}: {msg}{shown}{more}") from None


def _line_numbers(text: str) -> dict[Path_, int]:
    """The line of every key and item (composed again: only needed on an error)."""
    loader = _NodeLoader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    return dict(_lines(root, ())) if root is not None else {}


def _lines(node: yaml.Node, path: Path_) -> Iterator[tuple[Path_, int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            yield (*path, name), key.start_mark.line + 1
            yield from _lines(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _lines(item, (*path, i))


def _nearest_line(lines: dict[Path_, int], loc: Path_) -> int | None:
    for n in range(len(loc), -1, -1):
        line = lines.get(loc[:n])
        if line is not None:
            return line
    return None


def _expand_ranges(data: dict[str, Any], filename: str) -> tuple[dict[str, Any], list[int]]:
    """Expand node entries named by a hostlist; remember each node's source entry."""
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        return data, []
    out: list[Any] = []
    origin: list[int] = []
    for i, entry in enumerate(nodes):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and ("[" in name or "," in name):
            try:
                names = expand(name)
            except InventoryError as exc:
                raise InventoryError(f"{filename}: nodes[{i}].name: {exc}") from None
            out.extend({**entry, "name": n} for n in names)
            origin.extend([i] * len(names))
        else:
            out.append(entry)
            origin.append(i)
    return {**data, "nodes": out}, origin


def public_dict(cluster: Cluster) -> dict[str, Any]:
    """The cluster as plain data without defaults or secrets."""
    data = cluster.model_dump(mode="json", exclude_defaults=True)
    for kind in ("networks", "profiles", "nodes"):
        data[kind] = [{"name": r.pop("name"), **r} for r in data.get(kind, [])]
    for kind in ("profiles", "nodes"):
        for record in data.get(kind, []):
            power = record.get("power")
            if isinstance(power, dict):
                power.pop("password", None)
                if not power:
                    del record["power"]
    return data


def dump_cluster(cluster: Cluster, fmt: Format = "yaml") -> str:
    with gc_paused():
        data = public_dict(cluster)
        if fmt == "json":
            return json.dumps(data, indent=2) + "\n"
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
