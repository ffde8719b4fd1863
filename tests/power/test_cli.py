"""`corral power` and `corral console` end to end: real store, real ipmi_sim, exit codes."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import corral.cli
from corral.cli.main import cli
from tests.conftest import need_tool
from tests.power.peers import IpmiBmc, ipmi_sim


def _register() -> None:
    """main.register() without importing corral.cli.__main__ (which runs the CLI)."""
    for info in pkgutil.iter_modules(corral.cli.__path__):
        if info.name != "__main__":
            module = importlib.import_module(f"corral.cli.{info.name}")
            for command in getattr(module, "COMMANDS", ()):
                cli.add_command(command)


_register()


def corral(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


@pytest.fixture
def bmc(tmp_path: Path, corral_home: Path) -> Iterator[IpmiBmc]:
    need_tool("ipmi_sim", "ipmitool")
    with ipmi_sim(tmp_path / "bmc") as sim:
        yield sim


@pytest.mark.slow
def test_status_table_json_and_exit_codes(bmc: IpmiBmc) -> None:
    assert corral("network", "add", "prov", "--cidr", "10.9.0.0/24").exit_code == 0
    assert corral("profile", "add", "rack", "--network", "prov").exit_code == 0
    assert corral("node", "add", "n[1-3]", "--profile", "rack").exit_code == 0
    base = ["--power-driver", "ipmi", "--bmc-username", bmc.user]
    ok = corral(
        "node", "set", "n[1-2]", *base, "--bmc-address", bmc.address,
        "--bmc-password-env", "BMC_PW", env={"BMC_PW": bmc.password},
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert corral("node", "set", "n3", "--power-driver", "manual").exit_code == 0

    result = corral("power", "on", "n[1-3]")
    assert result.exit_code == 0, result.output
    assert "by hand: switch on n3" in result.output
    assert "Chassis Power is on" in bmc.ipmitool("chassis", "power", "status")

    result = corral("power", "status", "n[1-3]", "-o", "json", "--concurrency", "2")
    rows = json.loads(result.stdout)
    assert [(r["node"], r["result"]) for r in rows] == [
        ("n1", "on"),
        ("n2", "on"),
        ("n3", "unknown"),
    ]
    assert bmc.password not in result.output

    corral("node", "set", "n2", "--bmc-address", "127.0.0.1:9")
    result = corral("power", "status", "n[1-2]")
    assert result.exit_code == 1
    assert "n1" in result.stdout and "failed" in result.stdout
    assert bmc.password not in result.output


def test_unknown_node_is_a_user_error(corral_home: Path) -> None:
    result = CliRunner().invoke(cli, ["power", "status", "nope"])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_console_without_one_says_why(corral_home: Path) -> None:
    corral("node", "add", "m1")
    corral("node", "set", "m1", "--power-driver", "manual")
    result = CliRunner().invoke(cli, ["console", "m1"])
    assert result.exit_code == 1
    assert "cannot console" in result.output
