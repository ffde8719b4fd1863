"""`python -m bench` (what `make bench` runs): lists every benchmark, runs one by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_list_names_every_script_with_its_first_docstring_line() -> None:
    run = bench()
    assert run.returncode == 0, run.stderr
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"__main__"}
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("  ")}
    assert listed == scripts | {"provision"}
    assert "Boot-storm benchmark" in run.stdout


def test_a_benchmark_runs_by_name_with_its_arguments() -> None:
    run = bench("provision", "--help")
    assert run.returncode == 0, run.stderr
    assert "--fetch-arg" in run.stdout  # bench/provision/run.py's own --help


def test_an_unknown_name_says_where_the_list_is() -> None:
    run = bench("nosuch")
    assert run.returncode == 2
    assert "`python -m bench` lists them" in run.stderr
