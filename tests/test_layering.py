"""The layering contracts (pyproject.toml, run by `make lint`) pass on the tree and
fail on an upward import: checked on a copy of the package with one bad module added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import corral

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, on the `corral` found under `package_parent`."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=package_parent,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        Path(corral.__file__).parent,
        tmp_path / "corral",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_the_tree_keeps_every_contract(tree_copy: Path) -> None:
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("protocols/bad.py", "from corral.inventory import models\n", "protocols imports nothing"),
        ("store/bad.py", "from corral.images import api\n", "corral.store is not allowed"),
        ("inventory/bad.py", "import corral.app\n", "corral.inventory is not allowed"),
        ("boot/bad.py", "from corral.power import run\n", "corral.boot is not allowed"),
        ("newtop.py", "", "not listed as layers"),
        ("boot/bad.py", "from corral.store import db\n", "never touch the database"),
    ],
)
def test_an_upward_or_unplaced_import_breaks_the_lint(
    tree_copy: Path, module: str, source: str, broken: str
) -> None:
    (tree_copy / "corral" / module).write_text(source)
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert broken in result.stdout + result.stderr


# -- docs/architecture.md is drawn from the contracts and names every part --------------

DOC = (ROOT / "docs" / "architecture.md").read_text()
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_layer_diagram_lists_the_contract_layers_in_order() -> None:
    (layers,) = [c["layers"] for c in CONTRACTS["contracts"] if c["type"] == "layers"]
    diagram = DOC.split("```")[1].splitlines()
    drawn = [line.split("  ")[0].strip() for line in diagram if line and not line[0].isspace()]
    assert drawn == layers


def tracked_dirs() -> set[str]:
    """Every folder git tracks a file in, as `a/b/`."""
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {"/".join(Path(f).parts[:n]) + "/" for f in files for n in range(1, len(Path(f).parts))}


def named(folder: str) -> bool:
    """`folder` has a line, or (a test area) its name is in the `tests/` line."""
    return f"`{folder}`" in DOC or (
        folder.startswith("tests/") and f"`{folder.split('/')[1]}`" in DOC
    )


def test_every_top_level_module_and_folder_has_a_line() -> None:
    package = Path(corral.__file__).parent
    modules = [f"src/corral/{p.name}" for p in package.glob("*.py") if p.name != "__init__.py"]
    folders = [
        d
        for d in tracked_dirs()
        if (d.count("/") == 1 and d != "src/")
        or (d.startswith(("tests/", "bench/")) and d.count("/") == 2)
        or (d.startswith("src/corral/") and d.count("/") == 3)
    ]
    assert len(folders) > 20
    missing = sorted(m for m in modules if f"`{m}`" not in DOC)
    missing += sorted(f for f in folders if not named(f))
    assert missing == []
