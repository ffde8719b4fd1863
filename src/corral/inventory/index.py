"""`Inventory`: the records indexed by name, converted to and from a `Cluster`.

Conversion sorts by name, so an export is deterministic whatever order the
records were created in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.inventory.merge import EffectiveNode, effective
from corral.inventory.models import Cluster, ClusterSettings, Network, Node, Profile


@dataclass
class Inventory:
    """Mutable working copy of the inventory that commands change and validate."""

    settings: ClusterSettings = field(default_factory=ClusterSettings)
    networks: dict[str, Network] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def from_cluster(cls, cluster: Cluster) -> Inventory:
        return cls(
            settings=cluster.cluster,
            networks={n.name: n for n in cluster.networks},
            profiles={p.name: p for p in cluster.profiles},
            nodes={n.name: n for n in cluster.nodes},
        )

    def to_cluster(self) -> Cluster:
        return Cluster.model_construct(
            cluster=self.settings,
            networks=[self.networks[k] for k in sorted(self.networks)],
            profiles=[self.profiles[k] for k in sorted(self.profiles)],
            nodes=[self.nodes[k] for k in sorted(self.nodes)],
        )

    def copy(self) -> Inventory:
        """A working copy: records are replaced, never changed in place, so dicts suffice."""
        return Inventory(
            settings=self.settings,
            networks=dict(self.networks),
            profiles=dict(self.profiles),
            nodes=dict(self.nodes),
        )

    def effective(self, name: str) -> EffectiveNode:
        return effective(self.nodes[name], self.profiles)

    def primary_network(self, node: Node) -> Network | None:
        """The first network of the node's effective settings, if any."""
        nets = self.effective(node.name).settings.networks
        return self.networks.get(nets[0]) if nets else None
