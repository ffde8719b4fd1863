"""What pyproject.toml declares matches the tree: package-data globs and entry points."""

from __future__ import annotations

import tomllib
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_data_glob_matches_a_file() -> None:
    globs = PROJECT["tool"]["setuptools"]["package-data"]["corral"]
    package = ROOT / "src" / "corral"
    empty = [g for g in globs if not any(p.is_file() for p in package.glob(g))]
    assert empty == []


def test_every_power_entry_point_names_a_class_that_exists() -> None:
    for name, target in PROJECT["project"]["entry-points"]["corral.power"].items():
        module, _, attr = target.partition(":")
        cls = getattr(import_module(module), attr)
        assert cls.name == name
