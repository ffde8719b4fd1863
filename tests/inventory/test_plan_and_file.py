"""Declarative apply (create, update, prune, secrets kept) and the cluster file format."""

from __future__ import annotations

import textwrap

import pytest

from corral.inventory import ops
from corral.inventory.errors import InventoryError
from corral.inventory.fileformat import dump_cluster, load_cluster
from corral.inventory.index import Inventory
from corral.inventory.plan import Change, plan_apply

FILE = textwrap.dedent(
    """\
    cluster:
      name: lab
    networks:
    - name: prov
      cidr: 10.77.0.0/24
      gateway: 10.77.0.1
      dynamic_range: 10.77.0.200-10.77.0.250
    profiles:
    - name: compute
      image: rocky9
      networks: [prov]
      power: {driver: ipmi, username: admin, password: hunter2}
    nodes:
    - name: n[001-003]
      profiles: [compute]
    - name: login1
      profiles: [compute]
      interfaces:
      - network: prov
        mac: 52:54:00:AA:BB:01
        ip: 10.77.0.10
    """
)


def current() -> Inventory:
    inv = Inventory()
    plan = plan_apply(inv, load_cluster(FILE, "c.yaml"))
    return plan.result


def test_create_expands_ranges_and_allocates() -> None:
    plan = plan_apply(Inventory(), load_cluster(FILE, "c.yaml"))
    assert plan.summary() == {"create": 6, "update": 0, "delete": 0}
    assert plan.settings_changed
    assert str(plan.changes[0]) == "+ network prov"
    nodes = plan.result.nodes
    assert sorted(nodes) == ["login1", "n001", "n002", "n003"]
    assert nodes["login1"].interfaces[0].mac == "52:54:00:aa:bb:01"
    assert [str(nodes[n].interfaces[0].ip) for n in ("n001", "n002", "n003")] == [
        "10.77.0.2", "10.77.0.3", "10.77.0.4",
    ]  # fmt: skip


def test_reapply_is_empty_and_update_names_fields() -> None:
    inv = current()
    again = plan_apply(inv, inv.to_cluster())
    assert again.empty and again.changes == []
    changed = load_cluster(FILE.replace("image: rocky9", "image: alma9"), "c.yaml")
    plan = plan_apply(inv, changed)
    assert plan.changes == [Change("update", "profiles", "compute", ("image",))]
    assert str(plan.changes[0]) == "~ profile compute (image)"
    assert plan.result.profiles["compute"].image == "alma9"
    assert inv.profiles["compute"].image == "rocky9"  # the plan does not touch its input


def test_reapplying_a_file_keeps_addresses_and_macs_it_does_not_mention() -> None:
    """The hand-written file has no interfaces for n[001-003]: what the CLI set stays."""
    inv = current()
    ops.set_nodes(inv, ["n001"], {}, mac="52:54:00:00:00:01", ip="10.77.0.50")
    plan = plan_apply(inv, load_cluster(FILE, "c.yaml"))
    assert plan.empty, [str(c) for c in plan.changes]
    n001 = plan.result.nodes["n001"].interfaces[0]
    assert (n001.mac, str(n001.ip)) == ("52:54:00:00:00:01", "10.77.0.50")
    # an entry that states its interfaces gets exactly those
    text = FILE.replace(
        "- name: n[001-003]\n  profiles: [compute]",
        "- name: n[001-003]\n  profiles: [compute]\n  interfaces: []",
    )
    plan = plan_apply(inv, load_cluster(text, "c.yaml"))
    assert Change("update", "nodes", "n001", ("interfaces",)) in plan.changes
    assert str(plan.result.nodes["n001"].interfaces[0].ip) == "10.77.0.2"  # allocated anew
    assert plan.result.nodes["n001"].interfaces[0].mac is None


def test_missing_records_stay_unless_prune() -> None:
    inv = current()
    ops.add_nodes(inv, ["extra"], {"profiles": ["compute"]})
    desired = load_cluster(FILE, "c.yaml")
    keep = plan_apply(inv, desired)
    assert "extra" in keep.result.nodes
    pruned = plan_apply(inv, desired, prune=True)
    assert Change("delete", "nodes", "extra") in pruned.changes
    assert "extra" not in pruned.result.nodes
    assert "extra" in inv.nodes


def test_prune_refuses_to_orphan() -> None:
    inv = current()
    only_network = load_cluster("networks:\n- {name: prov, cidr: 10.77.0.0/24}\n", "x.yaml")
    plan = plan_apply(inv, only_network, prune=True)
    assert plan.result.nodes == {} and plan.result.profiles == {}
    no_networks = load_cluster("profiles:\n- {name: compute, networks: [prov]}\n", "x.yaml")
    with pytest.raises(InventoryError, match="network 'prov' does not exist"):
        plan_apply(inv, no_networks, prune=True)


def test_conflicting_file_is_rejected() -> None:
    inv = current()
    dup = FILE + "- name: other\n  interfaces:\n  - {network: prov, ip: 10.77.0.10}\n"
    with pytest.raises(InventoryError, match=r"ip 10\.77\.0\.10 is already used by node"):
        plan_apply(inv, load_cluster(dup, "c.yaml"))


def test_secrets_kept_across_apply_of_an_export() -> None:
    inv = current()
    exported = dump_cluster(inv.to_cluster())
    assert "hunter2" not in exported and "password" not in exported
    fresh = plan_apply(inv, load_cluster(exported, "export.yaml"))
    assert fresh.empty
    pw = fresh.result.profiles["compute"].power.password
    assert pw is not None and pw.get_secret_value() == "hunter2"
    # a password given in the file replaces the stored one
    newer = plan_apply(inv, load_cluster(FILE.replace("hunter2", "swordfish"), "c.yaml"))
    pw = newer.result.profiles["compute"].power.password
    assert pw is not None and pw.get_secret_value() == "swordfish"


def test_export_round_trip_is_byte_identical() -> None:
    inv = current()
    first = dump_cluster(inv.to_cluster())
    again = dump_cluster(plan_apply(Inventory(), load_cluster(first, "e.yaml")).result.to_cluster())
    assert first == again
    as_json = dump_cluster(inv.to_cluster(), "json")
    assert dump_cluster(load_cluster(as_json, "e.json")) == first


def where(text: str) -> str:
    with pytest.raises(InventoryError) as info:
        load_cluster(text, "c.yaml")
    return str(info.value)


def test_malformed_yaml_names_file_and_line() -> None:
    msg = where("networks:\n- name: prov\n  cidr: [10.0.0.0/24\nnodes: []\n")
    assert msg.startswith("c.yaml:4: malformed YAML")


def test_unknown_key_names_its_line() -> None:
    text = FILE.replace("  image: rocky9\n", "  image: rocky9\n  colour: red\n")
    msg = where(text)
    assert msg.startswith("c.yaml:11: profiles.0.colour: Extra inputs are not permitted")


def test_bad_values_name_line_field_and_value() -> None:
    msg = where(FILE.replace("cidr: 10.77.0.0/24", "cidr: 10.77.0.0/33"))
    assert msg.startswith("c.yaml:5: networks.0.cidr:") and "'10.77.0.0/33'" in msg
    msg = where(FILE.replace("mac: 52:54:00:AA:BB:01", "mac: 52:54:00:AA:BB"))
    assert msg.startswith("c.yaml:20: nodes.1.interfaces.0.mac:") and "52:54:00:AA:BB" in msg


def test_error_in_a_range_entry_points_at_the_entry() -> None:
    text = FILE.replace(
        "- name: n[001-003]\n  profiles: [compute]", "- name: n[001-003]\n  profile: [compute]"
    )
    msg = where(text)
    assert msg.startswith("c.yaml:15: nodes.0.profile: Extra inputs are not permitted")


def test_bad_range_in_file() -> None:
    assert where("nodes:\n- name: n[3-1]\n").startswith("c.yaml: nodes[0].name:")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert "expected a mapping" in where(text)


def test_empty_file_is_an_empty_cluster() -> None:
    assert load_cluster("", "c.yaml").nodes == []
