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
   A boot starts with `pxe`: the server records it when the initramfs spends
   this boot's token (fetching the iPXE script changes nothing: anyone can
   fetch it), and the initramfs reports it again first thing (harmless by
   rule 4, and needed where firmware boots without that script, e.g. a
   Raspberry Pi over TFTP).
6. A new state needs: a member of `State`, an entry in `DESCRIPTIONS`, its
   edges here, and a place in `PATH` if it lies on the way to `ready` (so
   `--watch-until` can rank it). A state nothing reports is removed, not kept
   (unknown machines are not a node state: they wait in the discovered table).
7. `lost` is entered by the server, never reported by a node: a `ready` node
   whose agent has sent no heartbeat for the heartbeat timeout becomes `lost`
   (`corral.store.agent.mark_lost`); its next heartbeat makes it `ready` again.

No I/O and no clock here: callers pass `now`. This module imports nothing of
corral and sits in the bottom layer, beside `inventory`, because the store
checks every report against it (pyproject.toml's layers contract). `State` is
the one spelling of a state in code, and a `StrEnum`, so it compares equal to
the plain strings that arrive over HTTP or come back from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BOOTED",
    "DESCRIPTIONS",
    "DOWNLOADING",
    "FAILED",
    "FROM_ANYWHERE",
    "HANDOVER",
    "INSTALLING",
    "LOST",
    "NEW",
    "PATH",
    "PXE",
    "READY",
    "REPORTABLE",
    "SERVICE",
    "STATES",
    "TRANSITIONS",
    "UNPACKING",
    "NodeState",
    "Refused",
    "State",
    "allowed",
    "edges",
    "next_states",
    "reached",
    "to_dot",
    "transition",
]


class State(StrEnum):
    """Where a node is; the value is what a node reports and what the API shows."""

    NEW = "new"
    PXE = "pxe"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    UNPACKING = "unpacking"
    HANDOVER = "handover"
    BOOTED = "booted"
    READY = "ready"
    LOST = "lost"
    SERVICE = "service"
    FAILED = "failed"


NEW = State.NEW
PXE = State.PXE
DOWNLOADING = State.DOWNLOADING
INSTALLING = State.INSTALLING
UNPACKING = State.UNPACKING
HANDOVER = State.HANDOVER
BOOTED = State.BOOTED
READY = State.READY
LOST = State.LOST
SERVICE = State.SERVICE
FAILED = State.FAILED

DESCRIPTIONS: dict[State, str] = {
    NEW: "in the inventory, never reported",
    PXE: "a boot started: the initramfs spent this boot's token (a boot or a reboot)",
    DOWNLOADING: "initramfs is fetching the image (BitTorrent or HTTP)",
    INSTALLING: "stateful: partitioning, formatting, writing the image to disk",
    UNPACKING: "stateless: unpacking the image into memory",
    HANDOVER: "initramfs found the image's init and switched root to it; the OS is starting",
    BOOTED: "the image's own system came up and said so (its agent or boot script)",
    READY: "runtime agent heartbeat: the system is up",
    LOST: "heartbeats stopped: the agent has not reported within the timeout",
    SERVICE: "rescue mode: initramfs shell and SSH, no switch_root",
    FAILED: "a step failed; see the last error",
}

TRANSITIONS: dict[State, frozenset[State]] = {
    NEW: frozenset(),
    # booted straight from pxe: a single-stage image (the image is the initrd)
    PXE: frozenset({DOWNLOADING, INSTALLING, SERVICE, BOOTED}),
    # stateful nodes may partition before or after the download
    DOWNLOADING: frozenset({UNPACKING, INSTALLING}),
    # corral's initramfs reports only `handover`: `booted` comes from the booted
    # system itself (its agent or boot script), so an image whose init does not
    # start never claims it. The direct edges to `booted` stay for a booted
    # system whose initramfs' `handover` report was lost.
    INSTALLING: frozenset({DOWNLOADING, UNPACKING, HANDOVER, BOOTED}),
    UNPACKING: frozenset({HANDOVER, BOOTED}),
    HANDOVER: frozenset({BOOTED}),
    BOOTED: frozenset({READY}),
    # booted again: a node that rebooted from its own disk asks for no boot script
    READY: frozenset({LOST, BOOTED}),
    # heartbeats resumed (a network outage, a restarted agent), or the node rebooted
    LOST: frozenset({READY, BOOTED}),
    SERVICE: frozenset(),
    FAILED: frozenset(),
}

FROM_ANYWHERE: frozenset[State] = frozenset({FAILED, PXE})

# The way to a running node, in order: "has node X reached booted?" ranks by it.
PATH: tuple[State, ...] = (NEW, PXE, DOWNLOADING, INSTALLING, UNPACKING, HANDOVER, BOOTED, READY)

# plain strings (not members) for places that print or offer them, e.g. click.Choice
STATES: tuple[str, ...] = tuple(s.value for s in DESCRIPTIONS)
REPORTABLE: frozenset[str] = frozenset(STATES) - {NEW}


@dataclass(frozen=True)
class NodeState:
    """A node's state and when it entered it."""

    state: State
    since: float


@dataclass(frozen=True)
class Refused:
    """A reported state the node may not enter from where it is."""

    current: str
    wanted: str
    reason: str


def allowed(current: str, wanted: str) -> bool:
    """Whether a node in `current` may report `wanted` (rules 2-4)."""
    if wanted not in REPORTABLE or current not in STATES:
        return False
    return wanted == current or wanted in FROM_ANYWHERE or wanted in TRANSITIONS[State(current)]


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
    return NodeState(State(event), now)


def reached(current: str, target: str) -> bool:
    """Whether a node in `current` is at `target` or past it on `PATH`."""
    if current == target:
        return True
    if current in PATH and target in PATH:
        return PATH.index(current) >= PATH.index(target)
    return False


def edges() -> Iterator[tuple[State, State]]:
    """Every listed edge of the table (not the rule-3 ones), in table order."""
    for source, targets in TRANSITIONS.items():
        for target in State:
            if target in targets:
                yield source, target


def to_dot() -> str:
    """The table as a Graphviz digraph; rule 3 drawn once, from `*`, dashed."""
    lines = [
        "digraph corral_node_states {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded"];',
    ]
    for state, description in DESCRIPTIONS.items():
        lines.append(f'  "{state}" [tooltip="{description}"];')
    lines.append('  "*" [shape=plaintext, tooltip="any state"];')
    lines.extend(f'  "{a}" -> "{b}";' for a, b in edges())
    lines.extend(f'  "*" -> "{b}" [style=dashed];' for b in sorted(FROM_ANYWHERE))
    lines.append("}")
    return "\n".join(lines) + "\n"
