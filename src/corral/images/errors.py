"""Errors of the image commands: all are user errors (the CLI exits 1).

ImageError              an image operation cannot be done; nothing was left behind
├── SourceError         the SOURCE of an import cannot be read (unknown type, corrupt)
├── NoKernel            the image has no kernel, so it cannot be packed for boot
├── NoInit              the image has no init to hand over to, so it cannot boot
└── ToolFailed          an external tool (tar, skopeo, umoci, rsync, debootstrap) failed
"""

from __future__ import annotations

from corral.inventory.errors import InventoryError


class ImageError(InventoryError):
    """An image operation failed; staging files were removed."""


class SourceError(ImageError):
    """An import source is of an unknown type, missing or unreadable."""


class NoKernel(ImageError):
    """The image holds no /boot/vmlinuz-VERSION with a matching modules directory."""


class NoInit(ImageError):
    """The image holds no executable /sbin/init (or /lib/systemd/systemd)."""


class ToolFailed(ImageError):
    """An external program exited non-zero; the message carries its last error lines."""
