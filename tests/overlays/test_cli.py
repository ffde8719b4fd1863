"""`corral overlay list|show|render` against a real CORRAL_HOME and database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from corral.app import Corral
from corral.cli.main import cli, register
from corral.config import Settings
from corral.inventory.models import Cluster
from tests.overlays.inventory import BMC_PASSWORD, CLUSTER


@pytest.fixture
def home(corral_home: Path) -> Path:
    Corral(Settings.from_env()).apply(Cluster.model_validate(CLUSTER))
    register()
    return corral_home


def corral(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_shows_builtins_sets_and_user_overlays(home: Path) -> None:
    (home / "overlays/hosts/etc").mkdir(parents=True)
    (home / "overlays/site").mkdir()
    result = corral("overlay", "list", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["hostname"]["origin"] == "builtin"
    assert rows["system"]["members"][:2] == ["hostname", "hosts"]
    assert (rows["hosts"]["origin"], rows["hosts"]["hides"]) == ("user", "builtin")
    assert rows["site"]["path"] == str(home / "overlays/site")
    assert "hostname" in corral("overlay", "list").output


def test_show_lists_files(home: Path) -> None:
    result = corral("overlay", "show", "network", "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert "target: /etc/resolv.conf" in result.output
    assert "source: etc/systemd/network/corral.network.j2" in result.output


def test_render_prints_files_and_one_file(home: Path) -> None:
    result = corral("overlay", "render", "n2", "hosts")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("==> /etc/hosts (mode 0644, overlay hosts) <==\n")
    one = corral("overlay", "render", "n2", "fstab", "--file", "etc/fstab")
    assert one.output.splitlines()[-1] == "/dev/nvme0n1p3\t/\text4\tdefaults\t0\t1"


def test_render_system_set_never_shows_the_bmc_password(home: Path) -> None:
    result = corral("overlay", "render", "n1", "system", "-o", "json")
    assert result.exit_code == 0, result.output
    paths = [f["path"] for f in json.loads(result.output)]
    assert "/etc/ssh/ssh_host_ed25519_key" in paths
    assert BMC_PASSWORD not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("render", "n9", "hosts"), "node 'n9' does not exist"),
        (("render", "n1", "nope"), "overlay 'nope' does not exist"),
        (("show", "nope"), "overlay 'nope' does not exist"),
        (("render", "n1", "hosts", "--file", "/etc/nope"), "make no /etc/nope"),
    ],
)
def test_user_errors_exit_1(home: Path, args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(cli, ["overlay", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_template_error_exits_1_naming_file_and_line(home: Path) -> None:
    (home / "overlays/bad/etc").mkdir(parents=True)
    (home / "overlays/bad/etc/x.j2").write_text("a\n{{ node.nme }}\n")
    result = CliRunner().invoke(cli, ["overlay", "render", "n1", "bad"])
    assert result.exit_code == 1
    assert "overlay bad: etc/x.j2 line 2:" in result.output
