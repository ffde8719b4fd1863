"""Option 82 circuit-id / remote-id normalisation and the pure naming decision."""

from __future__ import annotations

import pytest

from corral.discovery import Sighting, Switch, node_for
from corral.discovery.option82 import interface_of, match_port, remote_ids
from corral.discovery.switches import expand_ports, map_ports
from corral.inventory.errors import InventoryError

NUMERIC = {str(p): f"n{p:03d}" for p in range(1, 49)}
NAMED = {f"Gi1/0/{p}": f"a{p:02d}" for p in range(1, 49)}


@pytest.mark.parametrize(
    ("circuit_id", "interface", "port"),
    [
        ("12", "12", "12"),
        ("Gi1/0/12", "Gi1/0/12", "12"),
        ("GigabitEthernet1/0/12", "GigabitEthernet1/0/12", "12"),
        ("ge-0/0/12.0", "ge-0/0/12", "12"),
        ("ge-0/0/12.0:vlan10", "ge-0/0/12", "12"),
        ("vlan10:eth12", "eth12", "12"),
        ("eth12:vlan10", "eth12", "12"),
        ("10:eth12", "eth12", "12"),
        ("Vlan10 Gi1/0/12", "Gi1/0/12", "12"),
        ("Gi1/0/12 vlan 10", "Gi1/0/12", "12"),
        ("Ethernet12", "Ethernet12", "12"),
        ("swp12", "swp12", "12"),
        ("port012", "port012", "12"),
        (b"swp12\x00", "swp12", "12"),
        (b"\x00\x04\x00\x0a\x01\x0c", "1/12", "12"),  # Cisco vlan-mod-port: vlan 10, 1/12
        ("", None, None),
        ("vlan10", None, None),
    ],
)
def test_circuit_id_formats(
    circuit_id: bytes | str, interface: str | None, port: str | None
) -> None:
    assert interface_of(circuit_id) == interface
    assert match_port(NUMERIC, circuit_id) == port


@pytest.mark.parametrize(
    ("circuit_id", "port"),
    [
        ("Gi1/0/12", "Gi1/0/12"),
        ("gi1/0/12", "Gi1/0/12"),
        ("GigabitEthernet1/0/12", "Gi1/0/12"),
        ("vlan10:GigabitEthernet1/0/7", "Gi1/0/7"),
        ("Gi2/0/12", None),  # another stack member: not on this map
        ("12", None),  # a bare number does not guess among named ports
    ],
)
def test_named_ports_match_by_interface_path(circuit_id: str, port: str | None) -> None:
    assert match_port(NAMED, circuit_id) == port


def test_remote_id_spellings() -> None:
    mac = "00:1b:21:aa:bb:cc"
    assert mac in remote_ids(b"\x00\x1b\x21\xaa\xbb\xcc")
    assert mac in remote_ids(b"\x00\x06\x00\x1b\x21\xaa\xbb\xcc")
    assert mac in remote_ids("00-1B-21-AA-BB-CC")
    assert "leaf1" in remote_ids(b"Leaf1")


def switches() -> dict[str, Switch]:
    return {
        "leaf1": Switch(name="leaf1", address="10.0.0.11", ports=NUMERIC),
        "leaf2": Switch(
            name="leaf2", address="10.0.0.12", agent_ids=["00:1b:21:aa:bb:cc"], ports=NAMED
        ),
    }


def test_option82_picks_switch_by_remote_id_and_port_by_circuit_id() -> None:
    seen = Sighting("52:54:00:00:00:01", circuit_id="vlan10:eth12", remote_id="leaf1")
    found = node_for(seen, switches())
    assert found is not None and (found.node, found.switch, found.source) == (
        "n012",
        "leaf1",
        "option82",
    )
    seen = Sighting("52:54:00:00:00:01", b"Gi1/0/3", b"\x00\x1b\x21\xaa\xbb\xcc")
    found = node_for(seen, switches())
    assert found is not None and found.node == "a03"


def test_without_remote_id_a_port_only_one_switch_has_is_enough() -> None:
    # Gi1/0/3 is leaf2's Gi1/0/3 but also could be leaf1's port 3: ambiguous, so no name
    assert node_for(Sighting("52:54:00:00:00:01", "Gi1/0/3"), switches()) is None
    # "12" exists only on leaf1's numeric map
    found = node_for(Sighting("52:54:00:00:00:01", "12"), switches())
    assert found is not None and found.node == "n012"


def test_unknown_remote_id_or_port_gives_nothing() -> None:
    assert node_for(Sighting("52:54:00:00:00:01", "12", "spine9"), switches()) is None
    assert node_for(Sighting("52:54:00:00:00:01", "99", "leaf1"), switches()) is None


def test_fdb_is_used_when_option82_is_absent_and_must_be_unambiguous() -> None:
    seen = Sighting("52:54:00:00:00:01")
    found = node_for(seen, switches(), {"leaf2": ["GigabitEthernet1/0/5", "5"]})
    assert found is not None and (found.node, found.source) == ("a05", "snmp")
    # uplink ports are not mapped: only the access port counts
    found = node_for(seen, switches(), {"leaf1": ["Ethernet49", "49"], "leaf2": ["Gi1/0/5"]})
    assert found is not None and found.node == "a05"
    assert node_for(seen, switches(), {"leaf1": ["5"], "leaf2": ["Gi1/0/5"]}) is None


def test_port_maps_pair_one_to_one() -> None:
    assert expand_ports("1-3") == ["1", "2", "3"]
    assert expand_ports("swp[1-2]") == ["swp1", "swp2"]
    mapped = map_ports(Switch(name="s", address="x"), "1-48", "n[001-048]")
    assert mapped.ports["48"] == "n048"
    with pytest.raises(InventoryError, match="48 port"):
        map_ports(Switch(name="s", address="x"), "1-48", "n[001-047]")
