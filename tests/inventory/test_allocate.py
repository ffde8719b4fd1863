"""Addresses handed out in order, never the gateway, the dynamic range or a taken one."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.inventory import ops
from corral.inventory.allocate import allocate, free_addresses
from corral.inventory.errors import InventoryError
from corral.inventory.index import Inventory
from corral.inventory.models import Network


def net(cidr: str, gateway: str | None = None, dynamic: str | None = None) -> Network:
    return Network.model_validate(
        {"name": "prov", "cidr": cidr, "gateway": gateway, "dynamic_range": dynamic}
    )


def ips(*texts: str) -> list[IPv4Address]:
    return [IPv4Address(t) for t in texts]


def test_in_order_skipping_gateway_dynamic_and_taken() -> None:
    network = net("10.0.0.0/28", "10.0.0.2", "10.0.0.5-10.0.0.7")
    taken = set(ips("10.0.0.1", "10.0.0.4"))
    assert allocate(network, taken, 5) == ips(
        "10.0.0.3", "10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11"
    )
    # network (.0) and broadcast (.15) are never hosts
    assert IPv4Address("10.0.0.15") not in set(free_addresses(network, taken))


def test_out_of_addresses_says_how_many_are_left() -> None:
    network = net("10.0.0.0/29", "10.0.0.1")  # hosts .1-.6, gateway .1: 5 free
    with pytest.raises(
        InventoryError, match=r"network prov \(10.0.0.0/29\) has 5 free addresses, 6 needed"
    ):
        allocate(network, set(), 6)
    assert len(allocate(network, set(), 5)) == 5


def test_node_add_allocates_in_order_and_fills_holes() -> None:
    inv = Inventory()
    ops.add_network(inv, {"name": "prov", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1"})
    ops.add_profile(inv, {"name": "compute", "networks": ["prov"]})
    ops.add_nodes(inv, [f"n{i}" for i in range(1, 5)], {"profiles": ["compute"]})
    assert [str(inv.nodes[f"n{i}"].interfaces[0].ip) for i in range(1, 5)] == [
        "10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5",
    ]  # fmt: skip
    ops.delete_nodes(inv, ["n2"])
    ops.add_nodes(inv, ["m1", "m2"], {"profiles": ["compute"]})
    assert str(inv.nodes["m1"].interfaces[0].ip) == "10.77.0.3"
    assert str(inv.nodes["m2"].interfaces[0].ip) == "10.77.0.6"


def test_node_add_runs_out() -> None:
    inv = Inventory()
    ops.add_network(
        inv, {"name": "tiny", "cidr": "10.0.0.0/29", "dynamic_range": "10.0.0.4-10.0.0.6"}
    )
    ops.add_profile(inv, {"name": "p", "networks": ["tiny"]})
    with pytest.raises(InventoryError, match="has 3 free addresses, 4 needed"):
        ops.add_nodes(inv, ["a", "b", "c", "d"], {"profiles": ["p"]})


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.integers(24, 29),
    gateway_index=st.integers(1, 6),
    dyn=st.tuples(st.integers(1, 30), st.integers(0, 20)),
    taken_indexes=st.sets(st.integers(1, 250), max_size=40),
    batches=st.lists(st.integers(1, 20), min_size=1, max_size=6),
)
def test_property_never_twice_never_reserved(
    prefix: int,
    gateway_index: int,
    dyn: tuple[int, int],
    taken_indexes: set[int],
    batches: list[int],
) -> None:
    """Allocating in batches never hands out an address twice, nor a reserved one."""
    base = IPv4Address("10.9.0.0")
    size = 2 ** (32 - prefix)
    hosts = size - 2
    gateway = base + min(gateway_index, hosts)
    dyn_start = min(dyn[0], hosts)
    dyn_end = min(dyn_start + dyn[1], hosts)
    network = net(f"10.9.0.0/{prefix}", str(gateway), f"{base + dyn_start}-{base + dyn_end}")
    taken = {base + i for i in taken_indexes if i <= hosts}
    initially_taken = set(taken)
    handed: list[IPv4Address] = []
    for count in batches:
        try:
            got = allocate(network, taken, count)
        except InventoryError:
            free = len(list(free_addresses(network, taken)))
            assert free < count
            continue
        assert got == sorted(got)
        taken |= set(got)
        handed += got
    assert len(handed) == len(set(handed))
    assert not set(handed) & initially_taken
    for ip in handed:
        assert ip in network.cidr
        assert ip not in (network.cidr.network_address, network.cidr.broadcast_address)
        assert ip != network.gateway
        assert network.dynamic_range is not None and ip not in network.dynamic_range
