"""Golden output of every built-in overlay for each node of the fixed inventory.

golden/<node>/<path> holds each rendered file, golden/<node>.files lists
`mode overlay path` for each. Regenerate after a deliberate template change
with `CORRAL_UPDATE_GOLDEN=1 pytest tests/overlays` and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import sources
from corral.overlays.render import OverlayRenderer, RenderedOverlay

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"
NODES = ("n1", "n2", "n3")
SET_MEMBERS = {m for s, ms in sources.OVERLAY_SETS.items() if s != "system" for m in ms}
BUILTINS = sorted(
    p.name for p in sources.BUILTIN_ROOT.iterdir() if p.is_dir() and p.name not in SET_MEMBERS
)  # the members of other sets (slurm) have their own golden test


def manifest(rendered: RenderedOverlay) -> str:
    return "".join(
        f"{f.mode:04o} {rendered.origins[p]} {p}\n" for p, f in sorted(rendered.files.items())
    )


def write_golden(node: str, rendered: RenderedOverlay) -> None:
    shutil.rmtree(GOLDEN / node, ignore_errors=True)
    for path, (data, _mode, _owner) in rendered.files.items():
        target = GOLDEN / node / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (GOLDEN / f"{node}.files").write_text(manifest(rendered))


def golden_files(node: str) -> dict[str, bytes]:
    root = GOLDEN / node
    return {
        "/" + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("node", NODES)
def test_system_set_matches_golden(node: str, inv: Inventory, fixed_paths: Paths) -> None:
    rendered = OverlayRenderer(fixed_paths).render(inv, node)
    if UPDATE:
        write_golden(node, rendered)
    assert {p: f.data for p, f in rendered.files.items()} == golden_files(node)
    assert manifest(rendered) == (GOLDEN / f"{node}.files").read_text()


@pytest.mark.parametrize("overlay", BUILTINS)
def test_every_builtin_is_in_the_golden_files(overlay: str) -> None:
    """Each built-in renders at least one file for some node, and that file is golden."""
    listed = "".join((GOLDEN / f"{n}.files").read_text() for n in NODES)
    assert f" {overlay} /" in listed
    assert overlay in sources.OVERLAY_SETS["system"]


@pytest.mark.parametrize("overlay", BUILTINS)
def test_each_builtin_alone_gives_its_part_of_the_golden_output(
    overlay: str, inv: Inventory, fixed_paths: Paths
) -> None:
    renderer = OverlayRenderer(fixed_paths)
    for node in NODES:
        rendered = renderer.render(inv, node, [overlay])
        expected = golden_files(node)
        assert rendered.files, f"{overlay} made nothing for {node}"
        for path, file in rendered.files.items():
            assert file.data == expected[path]


def test_builtins_have_no_hidden_paths() -> None:
    """Package data globs skip dot-files: a built-in writes those through file()."""
    root = sources.BUILTIN_ROOT
    hidden = [
        p for p in root.rglob("*") if any(s.startswith(".") for s in p.relative_to(root).parts)
    ]
    assert hidden == []
