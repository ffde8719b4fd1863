"""Validated scalar types shared by every inventory record.

Each type normalises on the way in (MACs lower-case with colons, names
lower-case), so two spellings of one value never count as two values.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, TypeAlias

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from corral.inventory.errors import InventoryError

Data: TypeAlias = dict[str, Any]
"""A JSON object as it crosses a boundary (an API body, a status row, an event):
the one spelling of that type, so every layer means the same thing by it."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


def check_name(value: str) -> str:
    """A DNS-safe label: what a hostname, network or profile may be called."""
    name = value.strip().lower()
    if not _DNS_LABEL.match(name):
        raise ValueError(
            f"{value!r} is not a DNS-safe name (letters, digits and '-', 1-63 characters, "
            "not starting or ending with '-')"
        )
    return name


def check_domain(value: str) -> str:
    """A DNS domain: labels of letters, digits, '-' and '_' (1-63 each) joined by '.',
    at most 253 characters. It goes into DHCP option 15 and the nodes' resolv.conf.
    """
    domain = value.strip()
    labels = domain.removesuffix(".").split(".")
    if len(domain) > 253 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{value[:80]!r} is not a DNS domain (labels of letters, digits, '-' and '_' "
            "joined by '.', at most 253 characters)"
        )
    return domain


def check_mac(value: str) -> str:
    """Canonical MAC: six lower-case hex pairs joined by ':'."""
    mac = value.strip().lower()
    if not _MAC.match(mac):
        raise ValueError(f"{value!r} is not a MAC address (expected e.g. 52:54:00:12:34:56)")
    digits = mac.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _to_str(value: object) -> object:
    return str(value) if isinstance(value, IPv4Address | IPv4Network) else value


Name = Annotated[str, AfterValidator(check_name)]
Mac = Annotated[str, AfterValidator(check_mac)]
Domain = Annotated[str, AfterValidator(check_domain)]
IPv4 = Annotated[IPv4Address, BeforeValidator(_to_str), PlainSerializer(str, return_type=str)]
CIDR = Annotated[IPv4Network, PlainSerializer(str, return_type=str)]


def check_mac_or_error(value: str) -> str:
    """`check_mac` for values from the command line: a user error, not a crash."""
    try:
        return check_mac(value)
    except ValueError as exc:
        raise InventoryError(str(exc)) from None
