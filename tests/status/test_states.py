"""The transition table: allowed and forbidden moves, the two anywhere-rules, the dot dump."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corral.agent
from corral import states
from corral.states import NodeState, Refused, transition

BOOT_PATH = ["pxe", "downloading", "unpacking", "handover", "booted", "ready"]
STATEFUL_PATH = ["pxe", "downloading", "installing", "unpacking", "handover", "booted", "ready"]


def walk(path: list[str]) -> NodeState:
    current: NodeState | None = None
    for t, state in enumerate(path):
        result = transition(current, state, float(t))
        assert isinstance(result, NodeState), result
        current = result
    assert current is not None
    return current


@pytest.mark.parametrize("path", [BOOT_PATH, STATEFUL_PATH, ["pxe", "service"]])
def test_boot_paths_are_allowed(path: list[str]) -> None:
    end = walk(path)
    assert end == NodeState(path[-1], float(len(path) - 1))


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("new", "booted"),
        ("new", "downloading"),
        ("pxe", "unpacking"),
        ("pxe", "ready"),
        ("downloading", "booted"),
        ("unpacking", "downloading"),
        ("booted", "unpacking"),
        ("handover", "unpacking"),
        ("downloading", "handover"),
        ("pxe", "handover"),
        ("ready", "downloading"),
        ("failed", "booted"),
        ("service", "booted"),
    ],
)
def test_forbidden_moves_are_refused_with_the_way_out(current: str, wanted: str) -> None:
    result = transition(NodeState(current, 1.0), wanted, 2.0)
    assert isinstance(result, Refused)
    assert (result.current, result.wanted) == (current, wanted)
    assert f"cannot go from {current} to {wanted}" in result.reason
    assert "failed" in result.reason and "pxe" in result.reason


@pytest.mark.parametrize("current", states.STATES)
def test_failed_and_pxe_from_anywhere(current: str) -> None:
    for wanted in ("failed", "pxe"):
        result = transition(NodeState(current, 1.0), wanted, 5.0)
        assert isinstance(result, NodeState)
        assert result.state == wanted


def test_the_same_state_again_is_progress_and_keeps_since() -> None:
    here = NodeState("downloading", 10.0)
    assert transition(here, "downloading", 20.0) == here
    assert transition(None, "pxe", 3.0) == NodeState("pxe", 3.0)


# "discovered" was a state no code reported (unknown machines live in their own
# table, see `corral node discovered`); it is gone from the table
@pytest.mark.parametrize("event", ["new", "rebooting", "", "PXE", "discovered"])
def test_unknown_or_unreportable_states_are_refused(event: str) -> None:
    result = transition(NodeState("pxe", 1.0), event, 2.0)
    assert isinstance(result, Refused)
    assert "unknown state" in result.reason


def test_every_state_is_described_in_the_table_and_reaches_ready_or_rests() -> None:
    assert set(states.TRANSITIONS) == set(states.DESCRIPTIONS) == set(states.State)
    for targets in states.TRANSITIONS.values():
        assert targets <= set(states.STATES)
    # from every state there is a way to ready (through pxe at worst)
    for state in states.STATES:
        seen, todo = {state}, [state]
        while todo:
            for nxt in states.next_states(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert "ready" in seen


def test_reached_ranks_along_the_path() -> None:
    assert states.reached("ready", "booted")
    assert states.reached("booted", "booted")
    assert not states.reached("unpacking", "booted")
    assert not states.reached("handover", "booted")
    assert states.reached("handover", "unpacking")
    assert not states.reached("failed", "booted")
    assert states.reached("failed", "failed")
    assert not states.reached("service", "booted")


def test_dot_is_drawn_from_the_table() -> None:
    dot = states.to_dot()
    assert dot.startswith("digraph corral_node_states {")
    for a, b in states.edges():
        assert f'"{a}" -> "{b}";' in dot
    assert '"*" -> "failed" [style=dashed];' in dot
    assert '"*" -> "pxe" [style=dashed];' in dot
    assert dot.count("->") == len(list(states.edges())) + len(states.FROM_ANYWHERE)


def test_the_state_names_are_the_enum_and_compare_equal_to_reported_strings() -> None:
    assert tuple(s.value for s in states.State) == states.STATES
    assert all(type(name) is str for name in states.STATES)
    assert states.State("ready") == "ready"


def test_every_state_the_initramfs_reports_is_in_the_table() -> None:
    init = (Path(corral.agent.__file__).parent / "init").read_text()
    posted = set(re.findall(r"^\s*post_state (\w+)", init, re.MULTILINE))
    assert {"pxe", "downloading", "handover"} <= posted
    assert posted <= states.REPORTABLE
