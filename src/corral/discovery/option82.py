"""DHCP option 82 (relay agent information): which switch port a request came in on.

Switches and relays write the circuit-id (the port) and the remote-id (the
switch) in their own formats. Accepted circuit-ids, matched against the port
map of the switch:

| circuit-id as sent                     | port it names                             |
| -------------------------------------- | ----------------------------------------- |
| `12`                                   | 12                                        |
| `Gi1/0/12`, `GigabitEthernet1/0/12`    | interface path 1/0/12, or port 12         |
| `ge-0/0/12.0` (Juniper unit)           | path 0/0/12, or port 12                   |
| `Ethernet12`, `eth12`, `swp12`, `port12` | that name, or port 12                   |
| `vlan10:eth12`, `eth12:vlan10`, `ge-0/0/12.0:vlan10` | the part that is not the VLAN |
| `Vlan10 Gi1/0/12`, `Gi1/0/12 vlan 10`  | the part that is not the VLAN             |
| Cisco binary vlan-mod-port (`00 04 VV VV MM PP`) | module/port MM/PP, or port PP   |

A map port matches when it equals the name (case-insensitive), when its
interface path equals the circuit-id's path (so `Gi1/0/12` in the map matches
`GigabitEthernet1/0/12`), or, for a map port that is a plain number, when it
equals the last number of the circuit-id. Remote-ids are the switch's name,
an agent id configured on the switch, or its MAC (text, 6 raw bytes, or the
Cisco `00 06` + 6 bytes form).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

VLAN = re.compile(r"^vlan\s*\d+$|^\d+$", re.IGNORECASE)
PATH = re.compile(r"(\d+(?:[/:.-]\d+)*)$")
LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
CISCO_VLAN_MOD_PORT = 4
MAC_LEN = 6


def text_of(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip("\x00 ").strip()
    return value.strip()


def interface_of(circuit_id: bytes | str) -> str | None:
    """The interface named by a circuit-id, VLAN decorations and units removed."""
    if isinstance(circuit_id, bytes) and _is_cisco_binary(circuit_id):
        return f"{circuit_id[4]}/{circuit_id[5]}"
    text = text_of(circuit_id)
    parts = [p for p in re.split(r"[:+\s]+", text) if p]
    parts = _drop_vlan(parts)
    if not parts:
        return None
    name = parts[-1]
    return re.sub(r"\.\d+$", "", name)  # Juniper's logical unit: ge-0/0/12.0


def _drop_vlan(parts: list[str]) -> list[str]:
    """Remove VLAN words (`vlan10`, `vlan 10`, `Vlan10`) from the split circuit-id."""
    out: list[str] = []
    skip_number = False
    for part in parts:
        low = part.lower()
        if low == "vlan":
            skip_number = True
            continue
        if skip_number and part.isdigit():
            skip_number = False
            continue
        skip_number = False
        if low.startswith("vlan") and VLAN.match(low):
            continue
        out.append(part)
    # "10:eth12" (a bare VLAN number first) leaves two parts: keep the named one
    named = [p for p in out if not p.isdigit()]
    return named if named and len(out) > 1 else out


def _is_cisco_binary(raw: bytes) -> bool:
    return len(raw) == 6 and raw[0] == 0 and raw[1] == CISCO_VLAN_MOD_PORT


def _path(name: str) -> str | None:
    m = PATH.search(name)
    return m.group(1).replace("-", "/").replace(":", "/") if m else None


def _last_number(name: str) -> str | None:
    m = LAST_NUMBER.search(name)
    return str(int(m.group(1))) if m else None


def match_port(ports: Mapping[str, str], circuit_id: bytes | str) -> str | None:
    """The key of `ports` that `circuit_id` names, or None (also when ambiguous)."""
    name = interface_of(circuit_id)
    if not name:
        return None
    low, path, last = name.lower(), _path(name), _last_number(name)
    tests: list[Callable[[str], bool]] = [
        lambda key: key.lower() == low,
        lambda key: not key.isdigit() and path is not None and _path(key) == path,
        lambda key: key.isdigit() and str(int(key)) == last,
    ]
    for test in tests:
        found = [key for key in ports if test(key)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            return None
    return None


def remote_ids(remote_id: bytes | str) -> set[str]:
    """The spellings a remote-id may match: its text and, if it is a MAC, the MAC."""
    out: set[str] = set()
    raw = remote_id if isinstance(remote_id, bytes) else None
    if raw is not None and len(raw) == MAC_LEN + 2 and raw[:2] == b"\x00\x06":
        raw = raw[2:]
    if raw is not None and len(raw) == MAC_LEN:
        out.add(":".join(f"{b:02x}" for b in raw))
    text = text_of(remote_id).lower()
    if text:
        out.add(text)
        mac = normal_mac(text)
        if mac:
            out.add(mac)
    return out


def normal_mac(text: str) -> str | None:
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    if len(digits) != 12 or len(text) > 17:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
