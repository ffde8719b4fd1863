"""Names, MACs, addresses: each error names the field and the value."""

from __future__ import annotations

import pytest

from corral.inventory import ops
from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.index import Inventory
from corral.inventory.models import AddressRange, Network, Node
from corral.inventory.types import check_mac, check_name
from corral.inventory.validate import validate


@pytest.mark.parametrize("name", ["n001", "a", "rack1-n01", "x" * 63, "N001"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name.lower()


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "a.b", "x" * 64, "ab c", "n[1-2]"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a DNS-safe name") as info:
        check_name(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("52:54:00:12:34:56", "52:54:00:12:34:56"),
        ("52-54-00-AB-CD-EF", "52:54:00:ab:cd:ef"),
        ("525400abcdef", "52:54:00:ab:cd:ef"),
        (" 52:54:00:12:34:56 ", "52:54:00:12:34:56"),
    ],
)
def test_mac_is_canonical(given: str, canonical: str) -> None:
    assert check_mac(given) == canonical


@pytest.mark.parametrize(
    "mac", ["52:54:00:12:34", "52:54:00:12:34:5g", "52:54-00:12:34:56", "5254.00ab.cdef", ""]
)
def test_bad_macs(mac: str) -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        check_mac(mac)


def inv_with_network() -> Inventory:
    inv = Inventory()
    ops.add_network(
        inv,
        {
            "name": "prov",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dynamic_range": "10.77.0.200-10.77.0.250",
        },
    )
    ops.add_profile(inv, {"name": "compute", "networks": ["prov"]})
    return inv


def test_record_errors_name_field_and_value() -> None:
    inv = Inventory()
    with pytest.raises(InventoryError, match=r"network bad: cidr: .*\(got '10.77.0.0/33'\)"):
        ops.add_network(inv, {"name": "bad", "cidr": "10.77.0.0/33"})
    with pytest.raises(InventoryError, match=r"name: .*'Bad_Name'"):
        ops.add_network(inv, {"name": "Bad_Name", "cidr": "10.0.0.0/8"})
    with pytest.raises(
        InventoryError, match=r"gateway 10.1.0.1 is outside the network 10.0.0.0/16"
    ):
        ops.add_network(inv, {"name": "x", "cidr": "10.0.0.0/16", "gateway": "10.1.0.1"})
    with pytest.raises(InventoryError, match=r"dynamic_range 10.0.0.5-10.0.1.5 is outside"):
        ops.add_network(
            inv, {"name": "x", "cidr": "10.0.0.0/24", "dynamic_range": "10.0.0.5-10.0.1.5"}
        )
    with pytest.raises(InventoryError, match=r"start 10.0.0.9 is after its end 10.0.0.5"):
        ops.add_network(
            inv, {"name": "x", "cidr": "10.0.0.0/24", "dynamic_range": "10.0.0.9-10.0.0.5"}
        )
    with pytest.raises(
        InventoryError,
        match=r"network x: cidr: Input is not a valid IPv4 network \(got '10.0.0.1/24'\)",
    ):
        ops.add_network(inv, {"name": "x", "cidr": "10.0.0.1/24"})
    assert inv.networks == {}


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(InventoryError, match=r"colour: Extra inputs are not permitted"):
        ops.add_profile(Inventory(), {"name": "p", "colour": "red"})


@pytest.mark.parametrize(
    ("mac", "ip", "message"),
    [
        ("zz:zz", None, r"node n1: interfaces: mac: 'zz:zz' is not a MAC address"),
        (None, "10.77.0.999", r"--ip '10.77.0.999' is not an IPv4 address"),
        (None, "10.78.0.5", r"node n1: interfaces\[0\].ip 10.78.0.5 is outside network prov"),
        (None, "10.77.0.1", r"ip 10.77.0.1 is the gateway of network prov"),
        (None, "10.77.0.255", r"ip 10.77.0.255 is the network or broadcast address"),
        (None, "10.77.0.0", r"ip 10.77.0.0 is the network or broadcast address"),
        (
            None,
            "10.77.0.220",
            r"ip 10.77.0.220 is inside the dynamic range 10.77.0.200-10.77.0.250",
        ),
    ],
)
def test_node_mac_and_ip_errors(mac: str | None, ip: str | None, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        ops.add_nodes(inv_with_network(), ["n1"], {"profiles": ["compute"]}, mac=mac, ip=ip)


def test_mac_and_ip_set_one_node() -> None:
    with pytest.raises(InventoryError, match="--mac and --ip set one node"):
        ops.add_nodes(inv_with_network(), ["n1", "n2"], {"profiles": ["compute"]}, ip="10.77.0.9")


def test_duplicates_name_the_owner() -> None:
    inv = inv_with_network()
    ops.add_nodes(inv, ["n1"], {"profiles": ["compute"]}, mac="52:54:00:00:00:01", ip="10.77.0.9")
    with pytest.raises(
        Conflict, match=r"node n2: interfaces\[0\].mac 52:54:00:00:00:01 is already used by node n1"
    ):
        ops.add_nodes(inv, ["n2"], {"profiles": ["compute"]}, mac="52-54-00-00-00-01")
    inv = inv_with_network()
    ops.add_nodes(inv, ["n1"], {"profiles": ["compute"]}, ip="10.77.0.9")
    with pytest.raises(Conflict, match=r"ip 10.77.0.9 is already used by node n1"):
        ops.add_nodes(inv, ["n2"], {"profiles": ["compute"]}, ip="10.77.0.9")
    with pytest.raises(Conflict, match="node n1 already exists"):
        ops.add_nodes(inv, ["n1"], {"profiles": ["compute"]})
    with pytest.raises(Conflict, match="network prov already exists"):
        ops.add_network(inv, {"name": "prov", "cidr": "10.9.0.0/16"})


def test_references_must_exist() -> None:
    inv = inv_with_network()
    with pytest.raises(NotFound, match="profile 'nope' does not exist"):
        ops.add_nodes(inv, ["n1"], {"profiles": ["nope"]})
    inv = inv_with_network()
    with pytest.raises(NotFound, match="profile p: network 'nonet' does not exist"):
        ops.add_profile(inv, {"name": "p", "networks": ["nonet"]})
    with pytest.raises(NotFound, match="node 'ghost' does not exist"):
        ops.set_nodes(inv, ["ghost"], {"image": "x"})
    inv = inv_with_network()
    ops.add_nodes(inv, ["n1"], {"profiles": ["compute"]})
    with pytest.raises(Conflict, match="profile compute is used by nodes n1"):
        ops.delete_profile(inv, "compute")
    with pytest.raises(Conflict, match="network prov is used by compute, n1"):
        ops.delete_network(inv, "prov")


def test_second_interface_on_one_network() -> None:
    inv = inv_with_network()
    node = Node.model_validate(
        {"name": "n1", "interfaces": [{"network": "prov"}, {"network": "prov"}]}
    )
    inv.nodes["n1"] = node
    with pytest.raises(Conflict, match="a second interface on network 'prov'"):
        validate(inv)


def test_address_range_contains() -> None:
    r = AddressRange.parse("10.0.0.10-10.0.0.20")
    net = Network.model_validate({"name": "x", "cidr": "10.0.0.0/24", "dynamic_range": r})
    assert net.dynamic_range is not None
    from ipaddress import IPv4Address

    assert IPv4Address("10.0.0.10") in r and IPv4Address("10.0.0.20") in r
    assert IPv4Address("10.0.0.21") not in r and "10.0.0.15" not in r
    with pytest.raises(ValueError, match="not a range"):
        AddressRange.parse("10.0.0.10")


def test_the_removed_switch_fields_are_refused_naming_the_switch_map() -> None:
    from corral.inventory.fileformat import load_cluster

    text = "nodes:\n  - name: n1\n    switch: sw1\n    switch_port: '12'\n"
    with pytest.raises(InventoryError, match=r"corral switch map SWITCH PORT NODE"):
        load_cluster(text, "cluster.yaml")
