"""Boot scripts and disk layouts in the inventory: file round trip, merge, and refusals."""

from __future__ import annotations

import textwrap

import pytest

from corral.inventory import ops
from corral.inventory.errors import InventoryError
from corral.inventory.fileformat import dump_cluster, load_cluster
from corral.inventory.index import Inventory
from corral.inventory.plan import plan_apply

FILE = textwrap.dedent(
    """\
    networks:
    - name: prov
      cidr: 10.77.0.0/24
    profiles:
    - name: disk
      boot: stateful
      disk:
        device: /dev/vda
        partitions:
        - {label: efi, size_mib: 512, format: vfat, mount: /boot/efi}
        - {label: swap, size_mib: 1024, format: swap}
        - {label: root, format: xfs, mount: /}
      scripts:
        pre: |
          echo "checking $CORRAL_NODE"
          test -e /dev/vda
        post: |
          echo built > /etc/built-by
    nodes:
    - name: n[001-002]
      profiles: [disk]
      networks: [prov]
    - name: n003
      profiles: [disk]
      networks: [prov]
      scripts:
        post: echo mine > /etc/built-by
        pre: ""
    """
)


def applied(text: str = FILE) -> Inventory:
    return plan_apply(Inventory(), load_cluster(text, "c.yaml")).result


def test_scripts_and_layout_survive_export_and_apply() -> None:
    first = applied()
    exported = dump_cluster(first.to_cluster())
    assert 'echo "checking $CORRAL_NODE"' in exported
    again = applied(exported)
    assert again.to_cluster() == first.to_cluster()
    assert plan_apply(first, load_cluster(exported, "e.yaml")).summary()["update"] == 0


def test_a_nodes_script_replaces_its_profiles_and_empty_removes_one() -> None:
    inv = applied()
    shared = inv.effective("n001").settings.scripts
    assert shared.pre is not None and shared.pre.startswith('echo "checking')
    assert shared.post == "echo built > /etc/built-by\n"
    own = inv.effective("n003")
    assert own.settings.scripts.post == "echo mine > /etc/built-by"
    assert own.settings.scripts.pre is None
    assert own.origin("scripts.post") == "node"
    assert inv.effective("n001").origin("scripts.pre") == "profile:disk"


def with_plain_node() -> Inventory:
    inv = applied()
    ops.add_profile(inv, {"name": "plain"})
    ops.add_nodes(inv, ["n010"], {"profiles": ["plain"], "networks": ["prov"]})
    return inv


def test_stateful_without_a_disk_layout_is_refused_when_set() -> None:
    with pytest.raises(InventoryError, match="n010: boot is stateful but no disk layout"):
        ops.set_nodes(with_plain_node(), ["n010"], {"boot": "stateful"})
    # set on a profile: refused for the nodes that would boot stateful with no disk
    with pytest.raises(InventoryError, match="n010: boot is stateful but no disk layout"):
        ops.set_profile(with_plain_node(), "plain", {"boot": "stateful"})
    # a node's own disk satisfies its profile's stateful
    inv = with_plain_node()
    disk = {"device": "/dev/sdb", "partitions": [{"label": "r", "mount": "/"}]}
    ops.set_nodes(inv, ["n010"], {"disk": disk})
    ops.set_profile(inv, "plain", {"boot": "stateful"})
    assert inv.effective("n010").settings.boot == "stateful"


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        ([{"label": "data", "format": "ext4", "mount": "/data"}], "exactly one partition"),
        (
            [{"label": "a", "format": "ext4", "mount": "/"}, {"label": "b", "size_mib": 9}],
            "only the last partition may omit size_mib",
        ),
        ([{"label": "s", "format": "swap", "mount": "/"}], "swap partition s has a mount"),
        ([{"label": "r", "format": "btrfs", "mount": "/"}], "format"),
    ],
)
def test_bad_disk_layouts_are_refused(partitions: list[object], message: str) -> None:
    inv = applied()
    with pytest.raises(InventoryError, match=message):
        ops.set_nodes(inv, ["n001"], {"disk": {"device": "/dev/sda", "partitions": partitions}})


def test_scripts_are_bounded() -> None:
    inv = applied()
    with pytest.raises(InventoryError, match=r"scripts\.post"):
        ops.set_nodes(inv, ["n001"], {"scripts": {"post": "x" * 70000}})
