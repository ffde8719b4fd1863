"""SNMP MAC-table lookup against net-snmp's snmpd, adoption into the store, `corral switch`."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

import corral.cli
from corral.app import Corral
from corral.cli.main import cli
from corral.config import Settings
from corral.discovery import Sighting, Switch, adopt_by_port, locate
from corral.discovery.snmp import FdbEntry, find_mac
from tests.conftest import need_tool
from tests.discovery.snmp_peer import fdb_table, snmpd

COMMUNITY = "sw-secret"
PLAIN = "52:54:00:00:00:0c"  # in BRIDGE-MIB dot1dTpFdbTable, bridge port 12
TAGGED = "52:54:00:00:00:0d"  # only in Q-BRIDGE-MIB dot1qTpFdbTable, VLAN 10, port 13
UPLINK = "52:54:00:00:00:99"  # learned on the uplink, port 49 (not mapped)


@pytest.fixture(scope="module")
def switch_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    need_tool("snmpd", "snmpget")
    table = fdb_table(
        dot1d={PLAIN: 12, UPLINK: 49},
        dot1q={(10, TAGGED): 13, (10, PLAIN): 12},
        if_index={12: 1012, 13: 1013, 49: 1049},
        if_name={1012: "Gi1/0/12", 1013: "Gi1/0/13", 1049: "Te1/1/1"},
    )
    with snmpd(tmp_path_factory.mktemp("snmpd"), table, COMMUNITY) as port:
        yield port


def leaf(port: int, community: str = COMMUNITY) -> Switch:
    return Switch(
        name="leaf1",
        address="127.0.0.1",
        snmp_port=port,
        snmp_community=SecretStr(community),
        ports={f"Gi1/0/{p}": f"n{p:03d}" for p in range(1, 49)},
    )


def test_bridge_mib_and_q_bridge_mib_lookups(switch_port: int) -> None:
    assert asyncio.run(find_mac(leaf(switch_port), PLAIN)) == FdbEntry(12, 1012, "Gi1/0/12")
    assert asyncio.run(find_mac(leaf(switch_port), TAGGED)) == FdbEntry(13, 1013, "Gi1/0/13")
    assert asyncio.run(find_mac(leaf(switch_port), "52:54:00:00:00:77")) is None


def test_locate_by_snmp_ignores_unmapped_uplinks(switch_port: int) -> None:
    switches = {"leaf1": leaf(switch_port)}
    found = asyncio.run(locate(Sighting(TAGGED), switches))
    assert found is not None and (found.node, found.port, found.source) == (
        "n013",
        "Gi1/0/13",
        "snmp",
    )
    assert asyncio.run(locate(Sighting(UPLINK), switches)) is None


def test_a_silent_switch_is_skipped(switch_port: int) -> None:
    quiet = leaf(switch_port, community="wrong")  # snmpd ignores unknown communities
    lookup = lambda sw, mac: find_mac(sw, mac, timeout=0.3, retries=0)  # noqa: E731
    assert asyncio.run(locate(Sighting(PLAIN), {"leaf1": quiet}, lookup)) is None


def _register() -> None:
    for info in pkgutil.iter_modules(corral.cli.__path__):
        if info.name != "__main__":
            module = importlib.import_module(f"corral.cli.{info.name}")
            for command in getattr(module, "COMMANDS", ()):
                cli.add_command(command)


def corral_cli(*args: str) -> Result:
    _register()
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_switch_cli_and_adoption_by_port(switch_port: int, corral_home: Path) -> None:
    assert corral_cli("network", "add", "prov", "--cidr", "10.9.0.0/24").exit_code == 0
    assert corral_cli("profile", "add", "rack", "--network", "prov").exit_code == 0
    assert corral_cli("node", "add", "n[001-048]", "--profile", "rack").exit_code == 0
    args = ["--address", "127.0.0.1", "--snmp-port", str(switch_port)]
    added = corral_cli("switch", "add", "leaf1", *args, "--snmp-community", COMMUNITY)
    assert added.exit_code == 0, added.output
    assert corral_cli("switch", "map", "leaf1", "Gi1/0/[1-48]", "n[001-048]").exit_code == 0
    shown = corral_cli("switch", "show", "leaf1", "-o", "json")
    assert '"Gi1/0/12": "n012"' in shown.stdout and COMMUNITY not in shown.stdout
    listed = corral_cli("switch", "list")
    assert "n[001-048]" in listed.stdout and COMMUNITY not in listed.stdout

    app = Corral(Settings.from_env())
    by_snmp = asyncio.run(adopt_by_port(app, PLAIN.upper()))
    assert by_snmp is not None and by_snmp.node == "n012" and by_snmp.previous_mac is None
    by_82 = asyncio.run(adopt_by_port(app, "52:54:00:00:01:07", "vlan10:Gi1/0/7", "leaf1"))
    assert by_82 is not None and by_82.match.source == "option82"
    inv = app.read()
    assert inv.nodes["n012"].interfaces[0].mac == PLAIN
    assert inv.nodes["n007"].interfaces[0].mac == "52:54:00:00:01:07"
    # a replaced board on port 7 takes over the name
    again = asyncio.run(adopt_by_port(app, "52:54:00:00:02:07", "Gi1/0/7", "leaf1"))
    assert again is not None and again.previous_mac == "52:54:00:00:01:07"
    assert asyncio.run(adopt_by_port(app, UPLINK)) is None
    assert corral_cli("switch", "delete", "leaf1").exit_code == 0
    assert corral_cli("switch", "show", "leaf1").exit_code == 1
