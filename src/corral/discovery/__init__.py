"""Discovery: naming unknown machines by the switch port they are cabled to.

For the DHCP server: `await adopt_by_port(home, mac, circuit_id, remote_id)`, and
`port_contradiction(switches, node, circuit_id, remote_id)` to refuse a known node's
address to a request relayed from a port that the switch map does not give it.
The pure decision is `node_for(Sighting, switches, fdb)`; option 82 formats
are in `corral.discovery.option82`, the SNMP MAC-table lookup in
`corral.discovery.snmp`, switches and port maps in `corral.discovery.switches`.
"""

from corral.discovery.locate import (
    Adoption,
    PortMatch,
    Sighting,
    adopt_by_port,
    locate,
    node_for,
    port_contradiction,
)
from corral.discovery.switches import Switch

__all__ = [
    "Adoption",
    "PortMatch",
    "Sighting",
    "Switch",
    "adopt_by_port",
    "locate",
    "node_for",
    "port_contradiction",
]
