"""The store's one error type, in its own module so every store module can raise it."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database (or the key that seals its secrets) cannot be opened or used."""
