"""Which port of a switch a MAC was learned on: its forwarding table over SNMP (v2c).

BRIDGE-MIB `dot1dTpFdbPort.<mac>` answers in one GET on switches without
VLAN-aware bridging; otherwise Q-BRIDGE-MIB `dot1qTpFdbPort.<fdb>.<mac>` is
walked (the FDB id, usually the VLAN, is not known in advance). The bridge
port then gives the ifIndex (`dot1dBasePortIfIndex`) and the interface name
(IF-MIB `ifName`, else `ifDescr`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from corral.discovery.switches import Switch

DOT1D_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"
DOT1Q_FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"
BASE_PORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"


class SnmpError(RuntimeError):
    """The switch did not answer, or answered with an error."""


@dataclass(frozen=True)
class FdbEntry:
    """Where a MAC was learned: bridge port, and the interface behind it if known."""

    bridge_port: int
    if_index: int | None = None
    if_name: str | None = None

    def names(self) -> list[str]:
        """Port spellings to match against a switch's port map, best first."""
        return [n for n in (self.if_name, str(self.bridge_port)) if n]


def mac_suffix(mac: str) -> str:
    return ".".join(str(int(x, 16)) for x in mac.split(":"))


def _hlapi() -> Any:
    """pysnmp's high-level API, imported on first use: 0.7 s every CLI command would pay
    (the CLI imports this module through `corral.discovery`, never calls it)."""
    return importlib.import_module("pysnmp.hlapi.v3arch.asyncio")


class _Session:
    def __init__(self, switch: Switch, timeout: float, retries: int) -> None:
        self.switch, self.timeout, self.retries = switch, timeout, retries
        hl = self.hl = _hlapi()
        self.engine = hl.SnmpEngine()
        # switches' MAC tables are read with v2c communities in practice
        self.auth = hl.CommunityData(switch.snmp_community.get_secret_value(), mpModel=1)
        self.target: Any = None

    async def open(self) -> None:
        address = (self.switch.address, self.switch.snmp_port)
        self.target = await self.hl.UdpTransportTarget.create(
            address, timeout=self.timeout, retries=self.retries
        )

    def close(self) -> None:
        self.engine.close_dispatcher()

    async def get(self, oid: str) -> Any | None:
        err, status, _, binds = await self.hl.get_cmd(
            self.engine,
            self.auth,
            self.target,
            self.hl.ContextData(),
            self.hl.ObjectType(self.hl.ObjectIdentity(oid)),
        )
        self._check(err, status)
        value = binds[0][1]
        return None if _absent(value) else value

    async def walk(self, oid: str) -> list[tuple[str, Any]]:
        out = []
        async for err, status, _, binds in self.hl.walk_cmd(
            self.engine,
            self.auth,
            self.target,
            self.hl.ContextData(),
            self.hl.ObjectType(self.hl.ObjectIdentity(oid)),
            lexicographicMode=False,
        ):
            self._check(err, status)
            out += [(str(name), value) for name, value in binds]
        return out

    def _check(self, err: Any, status: Any) -> None:
        if err:
            raise SnmpError(f"switch {self.switch.name}: {err}")
        if status:
            raise SnmpError(f"switch {self.switch.name}: {status.prettyPrint()}")


def _absent(value: Any) -> bool:
    return type(value).__name__ in ("NoSuchObject", "NoSuchInstance", "EndOfMibView")


async def find_mac(
    switch: Switch, mac: str, timeout: float = 2.0, retries: int = 1
) -> FdbEntry | None:
    """The port `mac` was learned on, or None if the switch has not seen it.

    :raises SnmpError: the switch did not answer.
    """
    session = _Session(switch, timeout, retries)
    try:
        await session.open()
        port = await _bridge_port(session, mac)
        if port is None:
            return None
        if_index = await session.get(f"{BASE_PORT_IFINDEX}.{port}")
        if if_index is None:
            return FdbEntry(port)
        name = await session.get(f"{IF_NAME}.{int(if_index)}")
        if name is None:
            name = await session.get(f"{IF_DESCR}.{int(if_index)}")
        return FdbEntry(port, int(if_index), None if name is None else str(name))
    finally:
        session.close()


async def _bridge_port(session: _Session, mac: str) -> int | None:
    suffix = mac_suffix(mac)
    value = await session.get(f"{DOT1D_FDB_PORT}.{suffix}")
    if value is not None and int(value) > 0:
        return int(value)
    for name, value in await session.walk(DOT1Q_FDB_PORT):
        if name.endswith("." + suffix) and int(value) > 0:
            return int(value)
    return None
