"""Errors of overlay rendering, all user-fixable (the CLI exits 1, the API answers 4xx/5xx).

InventoryError                 (corral.inventory.errors)
└── OverlayError               an overlay cannot be found, read or rendered
    ├── OverlayNotFound        no user or built-in overlay (or set) of that name
    └── TemplateFailure        a template failed: names the overlay, the file and the line
"""

from __future__ import annotations

from corral.inventory.errors import InventoryError, NotFound


class OverlayError(InventoryError):
    """An overlay cannot be found, read or rendered."""


class OverlayNotFound(OverlayError, NotFound):
    """No overlay or overlay set has that name."""


class TemplateFailure(OverlayError):
    """A template did not render; the message names overlay, file and line."""

    def __init__(self, overlay: str, path: str, line: int | None, reason: str) -> None:
        where = f"{path} line {line}" if line else path
        super().__init__(f"overlay {overlay}: {where}: {reason}")
        self.overlay = overlay
        self.path = path
        self.line = line
        self.reason = reason
