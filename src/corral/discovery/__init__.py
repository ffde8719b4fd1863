"""Discovery: naming unknown machines by the switch port they are cabled to.

For the DHCP server: `await adopt_by_port(app, mac, circuit_id, remote_id)`.
The pure decision is `node_for(Sighting, switches, fdb)`; option 82 formats
are in `corral.discovery.option82`, the SNMP MAC-table lookup in
`corral.discovery.snmp`, switches and port maps in `corral.discovery.switches`.
"""

from corral.discovery.locate import Adoption, PortMatch, Sighting, adopt_by_port, locate, node_for
from corral.discovery.switches import Switch

__all__ = ["Adoption", "PortMatch", "Sighting", "Switch", "adopt_by_port", "locate", "node_for"]
