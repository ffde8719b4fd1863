"""Installing Debian's iPXE binaries into the TFTP root (disk I/O, so not in `boot`).

`corral init` and `corral serve` both call `install_ipxe_binaries`; after a
Debian upgrade of `ipxe` the next call replaces the changed files. Each file is
written to a temporary file in the TFTP root, fsynced, and renamed over the old
one (`os.replace`): a TFTP transfer that has the old file open keeps reading
the old bytes to the end, and a crash leaves the old file or the new one, never
a truncated mix. Copying in place would truncate a file while it is served.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from corral.boot.firmware import IPXE_EFI, UNDIONLY

IPXE_DIRS = (Path("/usr/lib/ipxe"), Path("/usr/share/ipxe"))
# name in the TFTP root -> name in Debian's ipxe package
IPXE_FILES = {
    UNDIONLY: "undionly.kpxe",
    IPXE_EFI: "ipxe.efi",
    "snponly.efi": "snponly.efi",
}


def find_ipxe(name: str, dirs: Sequence[Path] = IPXE_DIRS) -> Path | None:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def install_file(source: Path, dest: Path) -> None:
    """Copy `source` to `dest` by atomic rename (readers of the old `dest` keep it)."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def install_ipxe_binaries(tftp_root: Path, dirs: Sequence[Path] = IPXE_DIRS) -> list[str]:
    """Install the iPXE binaries that exist on this machine; returns their names."""
    tftp_root.mkdir(parents=True, exist_ok=True)
    done = []
    for target, source_name in IPXE_FILES.items():
        source = find_ipxe(source_name, dirs)
        if source is None:
            continue
        dest = tftp_root / target
        if not dest.exists() or dest.read_bytes() != source.read_bytes():
            install_file(source, dest)
        done.append(target)
    return done
