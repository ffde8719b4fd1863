"""What reading the inventory's stored form as plain data needs, without the models.

The store keeps each record as its model's JSON dump (`store.inventory.spec_of`).
`corral node list` on the local database reads those documents with the
standard library alone (`store.nodelist`), because importing pydantic and the
models costs more than the command's whole start-up budget. The few rules it
needs are here, in a module that imports nothing heavy, and the models and the
merge use the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"  # what JSON shows in place of a password (the store keeps it sealed)

# settings that hold one value: a later layer (profile, then the node) replaces it
SCALAR_FIELDS = ("image", "boot", "disk")


def merge_scalars(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The effective single-valued settings of stored layers (profiles in order,
    then the node): the last layer that sets one wins; unset values are left out,
    as the effective settings' JSON dump leaves them out."""
    out: dict[str, Any] = {}
    for layer in layers:
        for name in SCALAR_FIELDS:
            value = layer.get(name)
            if value is not None:
                out[name] = value
    return out
