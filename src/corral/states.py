"""Node states: where each machine is on its way from power-on to a running system.

The state machine is data. `TRANSITIONS` below is the whole of it; the
validation (`transition`), the status views and `corral status --graph` are
all read from that one table. The rules for changing it:

1. A node reports the state it has *entered*; the event is that state's name.
2. Every edge of the normal path is listed once in `TRANSITIONS`, from the
   state a node leaves to the states it may enter next.
3. Two edges exist from every state and are not listed per state
   (`FROM_ANYWHERE`): `failed` (something broke; the report carries the error)
   and `pxe` (the machine rebooted and asked for its boot script again).
4. Reporting the state a node is already in is progress, not a change: the
   report's data (bytes, peers, heartbeat) is kept, `since` stays.
5. `new` is never reported: it is the state of a node that has no status yet.
   A boot starts with `pxe`: corral's iPXE script records it, and the
   initramfs reports it again first thing (harmless by rule 4, and needed
   where firmware boots without that script, e.g. a Raspberry Pi over TFTP).
6. A new state needs: an entry in `DESCRIPTIONS`, its edges here, and a place
   in `PATH` if it lies on the way to `ready` (so `--watch-until` can rank it).

No I/O and no clock here: callers pass `now`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

NEW = "new"
DISCOVERED = "discovered"
PXE = "pxe"
DOWNLOADING = "downloading"
INSTALLING = "installing"
UNPACKING = "unpacking"
BOOTED = "booted"
READY = "ready"
SERVICE = "service"
FAILED = "failed"

DESCRIPTIONS: dict[str, str] = {
    NEW: "in the inventory, never reported",
    DISCOVERED: "seen on the network, not booted by corral yet",
    PXE: "firmware fetched its boot script (a boot or a reboot)",
    DOWNLOADING: "initramfs is fetching the image (BitTorrent or HTTP)",
    INSTALLING: "stateful: partitioning, formatting, writing the image to disk",
    UNPACKING: "stateless: unpacking the image into memory",
    BOOTED: "switched into the image's init",
    READY: "runtime agent heartbeat: the system is up",
    SERVICE: "rescue mode: initramfs shell and SSH, no switch_root",
    FAILED: "a step failed; see the last error",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({DISCOVERED}),
    DISCOVERED: frozenset(),
    # booted straight from pxe: a single-stage image (the image is the initrd)
    PXE: frozenset({DOWNLOADING, INSTALLING, SERVICE, BOOTED}),
    # stateful nodes may partition before or after the download
    DOWNLOADING: frozenset({UNPACKING, INSTALLING}),
    INSTALLING: frozenset({DOWNLOADING, UNPACKING, BOOTED}),
    UNPACKING: frozenset({BOOTED}),
    BOOTED: frozenset({READY}),
    READY: frozenset(),
    SERVICE: frozenset(),
    FAILED: frozenset(),
}

FROM_ANYWHERE: frozenset[str] = frozenset({FAILED, PXE})

# The way to a running node, in order: "has node X reached booted?" ranks by it.
PATH: tuple[str, ...] = (NEW, DISCOVERED, PXE, DOWNLOADING, INSTALLING, UNPACKING, BOOTED, READY)

STATES: tuple[str, ...] = tuple(DESCRIPTIONS)
REPORTABLE: frozenset[str] = frozenset(STATES) - {NEW}


@dataclass(frozen=True)
class NodeState:
    """A node's state and when it entered it."""

    state: str
    since: float


@dataclass(frozen=True)
class Refused:
    """A reported state the node may not enter from where it is."""

    current: str
    wanted: str
    reason: str


def allowed(current: str, wanted: str) -> bool:
    """Whether a node in `current` may report `wanted` (rules 2-4)."""
    if wanted not in REPORTABLE or current not in TRANSITIONS:
        return False
    return wanted == current or wanted in FROM_ANYWHERE or wanted in TRANSITIONS[current]


def next_states(current: str) -> list[str]:
    """The states `current` may move to, in table order."""
    return [s for s in STATES if s != current and allowed(current, s)]


def transition(current: NodeState | None, event: str, now: float) -> NodeState | Refused:
    """The state after a node reports `event`, or why it may not.

    `current` None is a node with no status yet (`new`). Re-reporting the
    current state keeps its `since` (rule 4).
    """
    here = current or NodeState(NEW, now)
    if event not in REPORTABLE:
        known = ", ".join(sorted(REPORTABLE))
        return Refused(here.state, event, f"unknown state {event!r} (one of: {known})")
    if not allowed(here.state, event):
        may = ", ".join(next_states(here.state))
        return Refused(here.state, event, f"cannot go from {here.state} to {event} (may: {may})")
    if event == here.state and current is not None:
        return current
    return NodeState(event, now)


def reached(current: str, target: str) -> bool:
    """Whether a node in `current` is at `target` or past it on `PATH`."""
    if current == target:
        return True
    if current in PATH and target in PATH:
        return PATH.index(current) >= PATH.index(target)
    return False


def edges() -> Iterator[tuple[str, str]]:
    """Every listed edge of the table (not the rule-3 ones), in table order."""
    for source, targets in TRANSITIONS.items():
        for target in STATES:
            if target in targets:
                yield source, target


def to_dot() -> str:
    """The table as a Graphviz digraph; rule 3 drawn once, from `*`, dashed."""
    lines = [
        "digraph corral_node_states {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded"];',
    ]
    for state in STATES:
        lines.append(f'  "{state}" [tooltip="{DESCRIPTIONS[state]}"];')
    lines.append('  "*" [shape=plaintext, tooltip="any state"];')
    lines.extend(f'  "{a}" -> "{b}";' for a, b in edges())
    lines.extend(f'  "*" -> "{b}" [style=dashed];' for b in sorted(FROM_ANYWHERE))
    lines.append("}")
    return "\n".join(lines) + "\n"
