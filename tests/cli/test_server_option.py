"""`corral --server URL` drives that server, or refuses in one line: never the local database.

A real `corral serve` (HTTP on loopback, its own CORRAL_HOME) and the CLI
with a different, empty CORRAL_HOME: anything the CLI did locally by mistake
would show up as a missing record on the server or a record in the wrong home.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.client import RemoteActions
from corral.discovery.switches import load_switches
from corral.images import catalog
from corral.images.records import Image
from tests.cli.conftest import Result, Run
from tests.conftest import need_tool
from tests.power.peers import IpmiBmc, ipmi_sim
from tests.services.conftest import LiveServer, live_server

__all__ = ["live_server"]  # the fixture, used by name


@pytest.fixture
def remote(corral: Run, live_server: LiveServer) -> Iterator[Run]:
    """`corral --server URL --token T ARGS...` from a CORRAL_HOME of its own."""

    def run(*args: str, input: str | None = None) -> Result:
        return corral("--server", live_server.url, "--token", live_server.token, *args, input=input)

    yield run


def seed(server: LiveServer) -> None:
    api = RemoteActions(server.url, server.token)
    api.add_network({"name": "prov", "cidr": "10.77.0.0/24"})
    api.add_profile({"name": "rack", "networks": ["prov"], "power": {"driver": "manual"}})
    api.add_nodes(["n1", "n2"], {"profiles": ["rack"]})


def ok(result: Result) -> Result:
    assert result.code == 0, (result.out, result.err)
    return result


def test_switch_commands_with_server_change_the_servers_database(
    remote: Run, live_server: LiveServer, home: Path
) -> None:
    seed(live_server)
    ok(remote("switch", "add", "sw1", "--address", "10.0.0.2", "--snmp-community", "s3cret"))
    ok(remote("switch", "map", "sw1", "1-2", "n[1-2]"))
    with live_server.corral.store.transaction() as conn:
        stored = load_switches(conn)
    assert stored["sw1"].ports == {"1": "n1", "2": "n2"}
    assert stored["sw1"].snmp_community.get_secret_value() == "s3cret"
    listed = json.loads(ok(remote("switch", "list", "-o", "json")).out)
    assert [(s["name"], s["ports"], s["snmp_community"]) for s in listed] == [
        ("sw1", {"1": "n1", "2": "n2"}, "***")
    ]
    shown = ok(remote("switch", "show", "sw1"))
    assert "s3cret" not in shown.out
    ok(remote("switch", "delete", "sw1"))
    with live_server.corral.store.transaction() as conn:
        assert load_switches(conn) == {}
    assert not (home / "corral.db").exists(), "the CLI opened its own database"


def test_power_status_with_server_knows_the_servers_nodes(
    remote: Run, live_server: LiveServer, home: Path
) -> None:
    seed(live_server)
    result = ok(remote("power", "status", "n[1-2]", "-o", "json"))
    assert [(r["node"], r["driver"], r["result"]) for r in json.loads(result.out)] == [
        ("n1", "manual", "unknown"),
        ("n2", "manual", "unknown"),
    ]
    missing = remote("power", "status", "n9")
    assert missing.code == 1
    assert "n9" in missing.error_line and "does not exist" in missing.error_line
    assert not (home / "corral.db").exists()


@pytest.mark.slow
def test_power_with_server_runs_on_the_server_with_its_bmc_password(
    remote: Run, live_server: LiveServer, tmp_path: Path
) -> None:
    need_tool("ipmi_sim", "ipmitool")
    seed(live_server)
    with ipmi_sim(tmp_path / "bmc") as bmc:
        set_ipmi(live_server, bmc)
        result = ok(remote("power", "on", "n1"))
        assert "Chassis Power is on" in bmc.ipmitool("chassis", "power", "status")
        status = ok(remote("power", "status", "n1", "-o", "json"))
        assert json.loads(status.out)[0]["result"] == "on"
        for text in (result.out, result.err, status.out, status.err):
            assert bmc.password not in text


def set_ipmi(server: LiveServer, bmc: IpmiBmc) -> None:
    power = {"driver": "ipmi", "address": bmc.address, "username": bmc.user}
    power["password"] = bmc.password
    RemoteActions(server.url, server.token).set_nodes(["n1"], {"power": power})


def test_image_list_with_server_lists_the_servers_catalog(
    remote: Run, live_server: LiveServer
) -> None:
    image = Image(
        name="tiny",
        architecture="x86_64",
        digest="sha256:" + "ab" * 32,
        size=1 << 20,
        files=3,
        source="dir:/srv/tiny",
        created=time.time(),
        fingerprint="f" * 16,
    )
    with live_server.corral.store.transaction() as conn:
        catalog.insert(conn, image)
    listed = json.loads(ok(remote("image", "list", "-o", "json")).out)
    assert [(i["name"], i["digest"], i["size"]) for i in listed] == [
        ("tiny", image.digest, image.size)
    ]
    assert "tiny" in ok(remote("image", "list")).out


@pytest.mark.parametrize(
    "args",
    [
        ("console", "n1"),
        ("image", "show", "tiny"),
        ("image", "pack", "tiny"),
        ("image", "gc"),
        ("overlay", "list"),
        ("lab", "status"),
        ("init",),
        ("serve", "--no-dhcp"),
    ],
    ids=" ".join,
)
def test_local_only_commands_refuse_server_in_one_line(
    remote: Run, home: Path, args: tuple[str, ...]
) -> None:
    result = remote(*args)
    assert result.code == 1, (result.out, result.err)
    assert "not through --server" in result.error_line
    assert f"'corral {args[0]}" in result.error_line  # names the command refused
    assert not (home / "corral.db").exists()


def test_image_pack_names_the_baked_url_boot_url_not_server(corral: Run) -> None:
    help_text = ok(corral("image", "pack", "--help")).out
    assert "--boot-url" in help_text and "--server" not in help_text
    assert corral("image", "pack", "tiny", "--server", "http://x").code == 2
