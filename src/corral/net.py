"""Facts about this machine's network interfaces (read with iproute2's JSON)."""

from __future__ import annotations

import json
import subprocess

from corral.inventory.errors import InventoryError


def address_of_interface(name: str) -> str:
    """The first IPv4 address of interface `name`."""
    proc = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", name], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise InventoryError(f"interface {name}: {proc.stderr.strip() or 'not found'}")
    for link in json.loads(proc.stdout or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                return str(addr["local"])
    raise InventoryError(f"interface {name} has no IPv4 address: give it one or use --advertise")
