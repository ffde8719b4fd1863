"""NFS shares from the inventory: exported by the node tagged nfs=server, mounted in every
other node's fstab (the fstab overlay), with the options set in the inventory."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, ClusterSettings
from corral.overlays.render import OverlayRenderer
from tests.overlays.inventory import CLUSTER

SHARES = [
    {"export": "/srv/home", "mount": "/home"},
    {"export": "/opt/software", "server": "10.77.0.1", "options": "ro,hard,_netdev"},
]


def nfs_inventory() -> Inventory:
    data = copy.deepcopy(CLUSTER)
    data["cluster"]["nfs"] = SHARES
    data["nodes"][1]["tags"] = {"nfs": "server"}
    return Inventory.from_cluster(Cluster.model_validate(data))


def fstab(paths: Paths, node: str) -> list[str]:
    rendered = OverlayRenderer(paths).render(nfs_inventory(), node, ["fstab"])
    return [
        line for line in rendered.files["/etc/fstab"].data.decode().splitlines() if "nfs" in line
    ]


def test_every_other_node_mounts_the_tagged_servers_share_and_the_given_server(
    paths: Paths,
) -> None:
    assert fstab(paths, "n1") == [
        "10.77.0.12:/srv/home\t/home\tnfs\trw,hard,noatime,_netdev,x-systemd.automount\t0\t0",
        "10.77.0.1:/opt/software\t/opt/software\tnfs\tro,hard,_netdev\t0\t0",
    ]
    # the server does not mount its own export
    assert fstab(paths, "n2") == [
        "10.77.0.1:/opt/software\t/opt/software\tnfs\tro,hard,_netdev\t0\t0"
    ]


def test_the_tagged_node_exports_its_shares_to_its_networks(paths: Paths) -> None:
    renderer = OverlayRenderer(paths)
    exports = renderer.render(nfs_inventory(), "n2", ["nfs"]).files["/etc/exports"].data.decode()
    assert "/srv/home\t10.77.0.0/24(rw,sync,no_subtree_check)\n" in exports
    assert "/opt/software" not in exports  # served elsewhere
    assert renderer.render(nfs_inventory(), "n1", ["nfs"]).files == {}


def test_a_stateless_server_gives_each_tmpfs_export_an_fsid_and_makes_its_directory(
    paths: Paths,
) -> None:
    data = copy.deepcopy(CLUSTER)
    data["cluster"]["nfs"] = [*SHARES, {"export": "/srv/scratch"}]
    data["nodes"][0]["tags"] = {"nfs": "server"}  # n1: stateless, its root a tmpfs
    inv = Inventory.from_cluster(Cluster.model_validate(data))
    files = OverlayRenderer(paths).render(inv, "n1", ["nfs"]).files
    exports = files["/etc/exports"].data.decode()
    assert "/srv/home\t10.77.0.0/24(rw,sync,no_subtree_check,fsid=1) " in exports
    assert "/srv/scratch\t10.77.0.0/24(rw,sync,no_subtree_check,fsid=2) " in exports
    made = files["/etc/tmpfiles.d/corral-nfs.conf"].data.decode().splitlines()
    assert [line for line in made if line.startswith("d ")] == [
        "d /srv/home 0755 root root -",
        "d /srv/scratch 0755 root root -",
    ]


@pytest.mark.parametrize(
    "share",
    [{"export": "relative"}, {"export": "/x", "options": "rw;reboot"}, {"export": "/a b"}],
)
def test_a_bad_share_is_refused(share: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ClusterSettings.model_validate({"nfs": [share]})
