"""The agent and the seed are files without a .py suffix, so `make lint typecheck` does not
see them: these hold them to the same checks (ruff, mypy --strict) as the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.conftest import AGENT

PROGRAMS = [AGENT, AGENT.with_name("corral-seed")]

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_the_agent_passes_ruff(program: Path) -> None:
    source = program.read_text()
    # py39: RHEL 9 and its rebuilds ship Python 3.9 (ruff reports newer syntax)
    for argv in (["check", "--target-version", "py39"], ["format", "--check"]):
        done = subprocess.run(
            [str(BIN / "ruff"), *argv, "--stdin-filename", "corral_agent.py", "-"],
            input=source, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_the_agent_passes_mypy_strict(tmp_path: Path, program: Path) -> None:
    copy = tmp_path / "corral_agent.py"
    shutil.copyfile(program, copy)
    argv = [str(BIN / "mypy"), "--strict", "--no-incremental", "--python-version=3.10", str(copy)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_the_agent_is_executable_and_starts_with_the_system_python(program: Path) -> None:
    assert program.stat().st_mode & 0o111
    assert program.read_text().splitlines()[0] == "#!/usr/bin/python3"
