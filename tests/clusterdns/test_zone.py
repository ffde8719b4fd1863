"""The cluster zone and its answers, built from an inventory made by the real operations."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.clusterdns.answer import answer
from corral.clusterdns.zone import build_zone, cluster_domain
from corral.inventory import ops
from corral.inventory.index import Inventory


@pytest.fixture
def inv() -> Inventory:
    inv = Inventory()
    ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
    ops.add_network(inv, {"name": "ib", "cidr": "10.8.0.0/24", "domain": "ib.example"})
    ops.add_profile(inv, {"name": "compute", "networks": ["prov", "ib"]})
    ops.add_nodes(inv, ["n1", "n2"], {"profiles": ["compute"]})
    n1 = inv.nodes["n1"]
    ib = {"network": "ib", "ip": "10.8.0.11"}
    inv.nodes["n1"] = n1.model_copy(
        update={
            "interfaces": [*n1.interfaces, n1.interfaces[0].__class__(**ib)],
            "aliases": ["head"],
        }
    )
    ops.set_nodes(inv, ["n2"], {"power": {"driver": "ipmi", "address": "10.7.0.202:623"}})
    return inv


def ask(inv: Inventory, name: str, rdtype: str = "A") -> dns.message.Message:
    reply = answer(build_zone(inv, 7), dns.message.make_query(name, rdtype))
    assert reply is not None, f"{name} was not answered from the zone"
    return reply


def addresses(reply: dns.message.Message) -> set[str]:
    return {r.to_text() for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset}


def test_the_domain_defaults_to_the_cluster_name_under_internal(inv: Inventory) -> None:
    assert cluster_domain(inv) == "corral.internal"


def test_a_node_name_resolves_to_its_primary_address_with_authority(inv: Inventory) -> None:
    n1 = str(inv.nodes["n1"].interfaces[0].ip)
    reply = ask(inv, "n1.corral.internal")
    assert addresses(reply) == {n1}
    assert reply.flags & dns.flags.AA


def test_each_network_gets_a_name_and_a_network_domain_its_own(inv: Inventory) -> None:
    assert addresses(ask(inv, "n1-ib.corral.internal")) == {"10.8.0.11"}
    assert addresses(ask(inv, "n1.ib.example")) == {"10.8.0.11"}


def test_the_bmc_name_comes_from_the_power_address(inv: Inventory) -> None:
    assert addresses(ask(inv, "n2-bmc.corral.internal")) == {"10.7.0.202"}


def test_an_alias_is_a_cname_to_the_node_with_its_address(inv: Inventory) -> None:
    reply = ask(inv, "head.corral.internal")
    assert reply.answer[0].rdtype == dns.rdatatype.CNAME
    assert addresses(reply) == {str(inv.nodes["n1"].interfaces[0].ip)}


def test_reverse_lookups_name_the_most_specific_name(inv: Inventory) -> None:
    ip = str(inv.nodes["n1"].interfaces[0].ip)
    ptr = ask(inv, dns.reversename.from_address(ip).to_text(), "PTR")
    assert ptr.answer[0][0].to_text() == "n1.corral.internal."
    ib = ask(inv, dns.reversename.from_address("10.8.0.11").to_text(), "PTR")
    assert ib.answer[0][0].to_text() == "n1.ib.example."


def test_an_unknown_name_in_our_domain_is_nxdomain_with_our_soa(inv: Inventory) -> None:
    reply = ask(inv, "nope.corral.internal")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    assert " 7 " in reply.authority[0][0].to_text()  # the serial is the generation


def test_a_known_name_without_the_asked_type_is_an_empty_noerror(inv: Inventory) -> None:
    reply = ask(inv, "n1.corral.internal", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert not reply.answer


def test_an_unknown_address_inside_a_cluster_network_is_nxdomain(inv: Inventory) -> None:
    reply = ask(inv, "250.0.7.10.in-addr.arpa.", "PTR")
    assert reply.rcode() == dns.rcode.NXDOMAIN


def test_names_outside_the_cluster_are_left_to_forwarding(inv: Inventory) -> None:
    zone = build_zone(inv)
    assert answer(zone, dns.message.make_query("debian.org", "A")) is None
    assert answer(zone, dns.message.make_query("1.1.168.192.in-addr.arpa", "PTR")) is None


@settings(max_examples=200, deadline=None)
@given(
    label=st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True),
    rdtype=st.sampled_from(["A", "AAAA", "PTR", "MX", "ANY", "TXT"]),
)
def test_any_question_under_our_domain_gets_an_authoritative_answer(
    label: str, rdtype: str
) -> None:
    inv = Inventory()
    ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
    reply = answer(build_zone(inv), dns.message.make_query(f"{label}.corral.internal", rdtype))
    assert reply is not None
    assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
