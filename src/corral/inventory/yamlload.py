"""Fast safe YAML loading: PyYAML's C event stream, turned into data in one loop.

`yaml.load(text, Loader=CSafeLoader)` spends most of its time composing a node
tree (a Python object and several resolver calls per scalar) before it builds
any data; a 10,000-node cluster file took 1-2 s that way. The parser's event
stream alone costs a tenth of that, so `safe_load` builds the data straight from
the events, resolving and constructing scalars with PyYAML's own SafeLoader
rules. Anything unusual (explicit tags other than the standard ones, merge keys
`<<`, non-scalar keys, several documents) falls back to the full loader, so the
result is always what `yaml.safe_load` returns.
"""

from __future__ import annotations

from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Unsupported(Exception):
    """A construct the fast path leaves to the full loader."""


def safe_load(text: str) -> Any:
    """Exactly `yaml.safe_load(text)` (None for an empty stream), only faster.

    Malformed input raises the parser's `yaml.MarkedYAMLError` with its mark.
    """
    try:
        return _from_events(text)
    except _Unsupported:
        return yaml.load(text, Loader=_Loader)


def _from_events(text: str) -> Any:
    loader = _Loader(text)
    try:
        return _Builder(loader).run()
    finally:
        loader.dispose()


_NO_KEY = object()


class _Builder:
    """Data from parser events: a stack of open containers, each with its pending key."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.constructors: dict[str, Any] = loader.yaml_constructors
        self.resolved: dict[tuple[str, tuple[bool, bool]], str] = {}
        self.anchors: dict[str, Any] = {}
        self.stack: list[list[Any]] = []
        self.root: Any = None

    def run(self) -> Any:
        documents = 0
        while (event := self.loader.get_event()) is not None:
            kind = type(event)
            if kind is yaml.ScalarEvent:
                self.put(self.scalar(event), event.anchor)
            elif kind is yaml.MappingStartEvent:
                self.start({}, event, _MAP)
            elif kind is yaml.SequenceStartEvent:
                self.start([], event, _SEQ)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                self.stack.pop()
            elif kind is yaml.AliasEvent:
                if event.anchor not in self.anchors:
                    raise _Unsupported  # the full loader reports the unknown alias
                self.put(self.anchors[event.anchor], None)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unsupported  # the full loader reports "expected a single document"
        return self.root

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            key = (event.value, event.implicit)
            tag = self.resolved.get(key)
            if tag is None:
                tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                self.resolved[key] = tag
        if tag == _STR:
            return event.value
        if tag == _MERGE or tag not in self.constructors:
            raise _Unsupported
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        return self.constructors[tag](self.loader, node)

    def start(self, container: Any, event: Any, default_tag: str) -> None:
        if event.tag not in (None, "!", default_tag):
            raise _Unsupported  # !!set, !!omap, application tags
        self.put(container, event.anchor)
        self.stack.append([container, _NO_KEY])

    def put(self, value: Any, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = value
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top[0], list):
            top[0].append(value)
        elif top[1] is _NO_KEY:
            if isinstance(value, list | dict):
                raise _Unsupported  # the full loader reports the unhashable key
            top[1] = value
        else:
            top[0][top[1]] = value
            top[1] = _NO_KEY
