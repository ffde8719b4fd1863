"""Rendering test of the k3s overlay set: config.yaml uses only k3s's documented keys.

Not a running k3s (its binary is not in Debian's archive and cannot be fetched
here): the rendered configuration is checked against the keys k3s documents
for its configuration file, which are its CLI flags without the leading `--`
(docs.k3s.io/installation/configuration#configuration-file, docs.k3s.io/cli/server,
docs.k3s.io/cli/agent). The list below is the subset corral may write.
"""

from __future__ import annotations

import copy

import yaml

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster
from corral.overlays.clustersecrets import ClusterSecrets
from corral.overlays.render import OverlayRenderer
from tests.overlays.inventory import CLUSTER

# documented for both `k3s server` and `k3s agent`
AGENT_KEYS = {"token", "server", "node-name", "node-ip", "node-label", "node-taint"}
# documented for `k3s server` only
SERVER_KEYS = {"write-kubeconfig-mode", "tls-san", "cluster-init", "disable"}


def k3s_inventory() -> Inventory:
    data = copy.deepcopy(CLUSTER)
    data["nodes"][1]["tags"] = {"k3s": "server"}
    return Inventory.from_cluster(Cluster.model_validate(data))


def config(paths: Paths, node: str) -> dict[str, object]:
    rendered = OverlayRenderer(paths).render(k3s_inventory(), node, ["k3s"])
    file = rendered.files["/etc/rancher/k3s/config.yaml"]
    assert file.mode == 0o600
    loaded: dict[str, object] = yaml.safe_load(file.data)
    return loaded


def test_k3s_rendering_uses_only_documented_keys_server_and_agent(paths: Paths) -> None:
    token = ClusterSecrets(paths.home / "secrets").k3s_token
    server, agent = config(paths, "n2"), config(paths, "n1")
    assert set(server) <= AGENT_KEYS | SERVER_KEYS
    assert set(agent) <= AGENT_KEYS  # an agent given a server-only key refuses to start
    assert server["token"] == agent["token"] == token
    assert "server" not in server
    assert agent["server"] == "https://10.77.0.12:6443"
    assert (agent["node-name"], agent["node-ip"]) == ("n1", "10.77.0.11")
    assert server["tls-san"] == ["10.77.0.12", "n2.demo.example"]


def test_k3s_unit_runs_server_on_the_tagged_node_and_agent_elsewhere(paths: Paths) -> None:
    renderer = OverlayRenderer(paths)
    units = {
        n: renderer.render(k3s_inventory(), n, ["k3s"]).files["/etc/systemd/system/k3s.service"]
        for n in ("n1", "n2")
    }
    assert b"ExecStart=/usr/local/bin/k3s server\n" in units["n2"].data
    assert b"ExecStart=/usr/local/bin/k3s agent\n" in units["n1"].data


def test_no_k3s_server_tagged_no_config(paths: Paths, inv: Inventory) -> None:
    files = OverlayRenderer(paths).render(inv, "n1", ["k3s"]).files
    assert "/etc/rancher/k3s/config.yaml" not in files
