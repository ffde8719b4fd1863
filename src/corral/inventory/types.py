"""Validated scalar types shared by every inventory record.

Each type normalises on the way in (MACs lower-case with colons, names
lower-case), so two spellings of one value never count as two values.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from corral.inventory.errors import InventoryError

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
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
IPv4 = Annotated[IPv4Address, BeforeValidator(_to_str), PlainSerializer(str, return_type=str)]
CIDR = Annotated[IPv4Network, PlainSerializer(str, return_type=str)]


def check_mac_or_error(value: str) -> str:
    """`check_mac` for values from the command line: a user error, not a crash."""
    try:
        return check_mac(value)
    except ValueError as exc:
        raise InventoryError(str(exc)) from None
