"""Running `corral`: in-process through click's CliRunner (fast), or as the real
console script in a subprocess (proves the entry point and exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from corral.cli.main import cli, register

CORRAL = Path(sys.executable).parent / "corral"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line a user error prints on stderr."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {self.err!r}"
        return lines[0]


Run = Callable[..., Result]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env["CORRAL_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def corral(home: Path) -> Run:
    """`corral ARGS...` in-process against `home` (pass home= for another one)."""
    register()
    runner = CliRunner()

    def run(*args: str, home_: Path | None = None, input: str | None = None) -> Result:
        result = runner.invoke(cli, list(args), env=_env(home_ or home), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def corral_proc(home: Path) -> Run:
    """`corral ARGS...` as the installed console script, in a subprocess."""
    assert CORRAL.exists(), f"console script missing: {CORRAL}"

    def run(*args: str, home_: Path | None = None, input: str | None = None) -> Result:
        proc = subprocess.run(
            [str(CORRAL), *args],
            check=False,
            env=_env(home_ or home),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


# what `corral --help` and `node list` must not load (start-up time; test_lazy_cli.py)
HEAVY = ("sqlalchemy", "pydantic", "corral.inventory.models", "corral.store.db", "corral.app")


def run_cli_listing_modules(args: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
    """`corral ARGS` in a fresh interpreter: its stdout, and the heavy modules it loaded."""
    code = (
        "import sys\n"
        "from corral.cli.main import cli\n"
        f"try: cli.main({args!r}, prog_name='corral')\n"
        "except SystemExit as exc: assert not exc.code, exc.code\n"
        f"print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    heavy = done.stderr.rpartition("HEAVY:")[2].strip()
    return done.stdout, [m for m in heavy.split(",") if m]
