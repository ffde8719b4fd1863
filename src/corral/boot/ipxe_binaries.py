"""Where the iPXE binaries come from: Debian's `ipxe` package, copied into the TFTP root."""

from __future__ import annotations

import shutil
from pathlib import Path

IPXE_DIRS = (Path("/usr/lib/ipxe"), Path("/usr/share/ipxe"))
# name in the TFTP root -> name in Debian's ipxe package
IPXE_FILES = {
    "undionly.kpxe": "undionly.kpxe",
    "ipxe.efi": "ipxe.efi",
    "snponly.efi": "snponly.efi",
}


def find_ipxe(name: str) -> Path | None:
    for d in IPXE_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def install_ipxe_binaries(tftp_root: Path) -> list[str]:
    """Copy the iPXE binaries that exist on this machine; returns their names."""
    tftp_root.mkdir(parents=True, exist_ok=True)
    done = []
    for target, source_name in IPXE_FILES.items():
        source = find_ipxe(source_name)
        if source is None:
            continue
        dest = tftp_root / target
        if not dest.exists() or dest.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, dest)
        done.append(target)
    return done
