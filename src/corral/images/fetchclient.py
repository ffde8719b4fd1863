"""corral-fetch, the initramfs' BitTorrent client, compiled from its C++ source.

The source ships with corral (`corral/agent/fetch/corral-fetch.cpp`); the binary
is compiled with the host's g++ against the host's libtorrent-rasterbar 2.0 the
first time an initramfs needs it (~15 s), then kept in `cache_dir()` under a name
keyed by what it is made of: the source's sha256, the libtorrent package version,
the architecture and the compiler flags. A changed source or an upgraded
libtorrent is a new file; an old one is never half-replaced.

Host architecture only: an initramfs of another architecture (arm64 on an x86-64
server) keeps aria2c from that architecture's Debian packages, and the init uses
whichever client it finds (docs/images.md).

Standalone (e.g. for bench/provision): `python -m corral.images.fetchclient`
prints the binary's path, building it if needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from corral.images import tools
from corral.images.debootstrap import host_architecture
from corral.images.errors import ImageError

SOURCE = Path(__file__).resolve().parent.parent / "agent" / "fetch" / "corral-fetch.cpp"
CACHE_ENV = "CORRAL_FETCH_CACHE"
DEFAULT_CACHE = Path("/var/cache/corral/fetch")
LIBTORRENT_PACKAGE = "libtorrent-rasterbar-dev"
CXXFLAGS = ("-std=c++17", "-O2", "-s", "-Wall", "-Wextra")
LIBS = ("-ltorrent-rasterbar",)


def cache_dir() -> Path:
    """Where compiled clients are kept: `$CORRAL_FETCH_CACHE`, or the default."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def libtorrent_version() -> str:
    """The installed libtorrent-rasterbar-dev version; a clear error when it is missing."""
    with contextlib.suppress(ImageError):
        out = tools.run(["dpkg-query", "-W", "-f=${Status} ${Version}", LIBTORRENT_PACKAGE])
        if out.startswith("install ok installed "):
            return out.rsplit(" ", 1)[-1]
    raise ImageError(
        f"{LIBTORRENT_PACKAGE} is not installed: corral-fetch, the initramfs' BitTorrent "
        f"client, is compiled against it (apt-get install {LIBTORRENT_PACKAGE} g++)"
    )


def cache_key(arch: str) -> str:
    """What the binary is made of, hashed: source, libtorrent version, arch, flags."""
    parts = [hashlib.sha256(SOURCE.read_bytes()).hexdigest(), libtorrent_version(), arch]
    return hashlib.sha256("\n".join([*parts, *CXXFLAGS, *LIBS]).encode()).hexdigest()[:16]


def available(arch: str) -> bool:
    """Whether `build(arch)` can work here (no compile): host arch, g++ and libtorrent."""
    if arch != host_architecture():
        return False
    try:
        tools.require("g++", "g++")
        libtorrent_version()
    except ImageError:
        return False
    return True


def build(arch: str | None = None) -> Path:
    """The corral-fetch binary for `arch` (default: the host's), compiled on first use."""
    arch = arch or host_architecture()
    if arch != host_architecture():
        raise ImageError(
            f"corral-fetch is compiled for the host architecture ({host_architecture()}) "
            f"only; an {arch} initramfs keeps aria2c"
        )
    gxx = tools.require("g++", "g++")
    dest = cache_dir() / f"corral-fetch-{arch}-{cache_key(arch)}"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as tmp:
        out = Path(tmp) / dest.name
        tools.run([gxx, *CXXFLAGS, "-o", str(out), str(SOURCE), *LIBS])
        out.chmod(0o755)
        out.rename(dest)  # atomic: a concurrent build of the same key wrote the same bytes
    return dest


if __name__ == "__main__":
    print(build())
