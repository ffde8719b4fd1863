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


def interface_of_address(address: str) -> str | None:
    """The interface that holds IPv4 `address`, or None when no interface does."""
    proc = subprocess.run(
        ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise InventoryError(f"cannot list interfaces: {proc.stderr.strip()}")
    for link in json.loads(proc.stdout or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet" and addr.get("local") == address:
                return str(link["ifname"])
    return None


def dhcp_interface(address: str, interface: str | None) -> str | None:
    """The interface DHCP must listen on to serve `address` (a broadcast never reaches
    a socket bound to an address): `interface`, or the one holding `address`.

    :raises InventoryError: `address` is on no interface, or not on `interface`.
    """
    if address == "0.0.0.0":
        return interface
    owner = interface_of_address(address)
    if owner is None:
        raise InventoryError(
            f"--address {address} is on no interface of this host, so DHCP cannot "
            "listen there: give one of this host's addresses, or --no-dhcp"
        )
    if interface and interface != owner:
        raise InventoryError(f"--address {address} is on {owner}, not on --interface {interface}")
    return owner
