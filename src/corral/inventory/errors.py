"""Errors a user can fix: each message names the field and the value.

InventoryError          bad input; the CLI exits 1, the API answers 400
├── NotFound            a named record does not exist (404)
└── Conflict            a name, MAC or address is already taken (409)
"""

from __future__ import annotations


class InventoryError(ValueError):
    """The inventory would become invalid; nothing was changed."""


class NotFound(InventoryError):
    """A record named in the request does not exist."""

    @classmethod
    def named(cls, kind: str, name: str) -> NotFound:
        """The one wording, for the model path and the plain reader (`store.nodelist`)."""
        return cls(f"{kind} {name!r} does not exist (see 'corral {kind} list')")


class Conflict(InventoryError):
    """A unique value (name, MAC, IP) is already used elsewhere."""
