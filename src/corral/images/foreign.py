"""Programs for another architecture, from that architecture's Debian packages.

Why: an arm64 image must boot an initramfs of arm64 programs, and the server
is usually x86-64. The host's binaries are never copied into a foreign
initramfs; instead the packages (with the libraries they depend on, as apt
resolves them) are fetched with `apt-get download PKG:ARCH` and unpacked with
`dpkg -x`. Each unpacked package is cached under `deb_cache()` as
`<package>_<version>_<arch>/`, so a new version is a new directory and an old
one is never half-replaced. The machine needs `dpkg --add-architecture ARCH`
and `apt-get update` once; the error says so.

Shared libraries are found by reading DT_NEEDED and PT_INTERP with `readelf`
(binutils) in the unpacked trees: the host's loader cannot run foreign
binaries, so `ldd` is no help here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from corral.images import tools
from corral.images.errors import ImageError

CACHE_ENV = "CORRAL_DEB_CACHE"
# Debian's signed GRUB network image: arm64 UEFI's loader (corral.services.grub)
ARM64_LOADER_PACKAGE = "grub-efi-arm64-signed"
DEFAULT_CACHE = Path("/var/cache/corral/debs")
APT_LISTS = Path("/var/lib/apt/lists")  # changes when `apt-get update` brings new versions
LIB_DIRS = ("lib/{triplet}", "usr/lib/{triplet}", "lib", "usr/lib")
TRIPLETS = {
    "arm64": "aarch64-linux-gnu",
    "amd64": "x86_64-linux-gnu",
    "armhf": "arm-linux-gnueabihf",
    "riscv64": "riscv64-linux-gnu",
}
_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
_INTERP = re.compile(r"Requesting program interpreter: ([^\]]+)\]")


def deb_cache() -> Path:
    """Where unpacked foreign packages are kept: `$CORRAL_DEB_CACHE`, or the default."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def candidates(packages: Sequence[str], arch: str, strict: bool = True) -> dict[str, str]:
    """The versions apt would fetch of each PKG:ARCH (one apt-cache call); a clear error if
    apt knows one of them not, or, not `strict`, without it (e.g. an `all` package)."""
    out = tools.run(["apt-cache", "policy", *(f"{p}:{arch}" for p in packages)])
    found = dict(
        re.findall(r"^(\S+?):(?:\S+?:)?\n(?:\s+Installed:.*\n)?\s+Candidate:\s*(\S+)", out, re.M)
    )
    versions = {}
    for package in packages:
        version = found.get(package) or found.get(f"{package}:{arch}")
        if (version is None or version == "(none)") and not strict:
            continue
        if version is None or version == "(none)":
            raise ImageError(
                f"apt has no {package}:{arch}: "
                f"run `dpkg --add-architecture {arch} && apt-get update`"
            )
        versions[package] = version
    return versions


def candidate(package: str, arch: str) -> str:
    """The version apt would fetch of PKG:ARCH."""
    return candidates([package], arch)[package]


def dependencies(packages: Sequence[str], arch: str) -> list[str]:
    """PACKAGES and what they depend on (recursively, no recommends), as apt names them."""
    argv = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests"]
    argv += ["--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
    out = tools.run([*argv, *(f"{p}:{arch}" for p in packages)])
    names: list[str] = []
    for line in out.splitlines():
        if line and not line[0].isspace() and not line.startswith("<"):
            name = line.split(":", 1)[0]
            if name not in names:
                names.append(name)
    return names


def library_packages(packages: Sequence[str], arch: str) -> set[str]:
    """Those of PACKAGES that Debian files in section `libs` for `arch` (one apt-cache call;
    an architecture `all` package, which holds no library, is not among them)."""
    argv = ["apt-cache", "show", "--no-all-versions", *(f"{p}:{arch}" for p in packages)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)  # unknown: skipped
    found = set()
    for record in proc.stdout.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Section|Architecture): *(\S+)", record, re.M))
        if fields.get("Section", "").endswith("libs") and fields.get("Architecture") == arch:
            found.add(fields["Package"])
    return found


def resolve(arch: str, packages: Sequence[str], libraries_only: bool) -> dict[str, str]:
    """{package: version} of PACKAGES' closure as apt sees it now (several apt-cache calls)."""
    names = dependencies(packages, arch)
    if libraries_only:
        libs = library_packages(names, arch)
        names = [n for n in names if n in packages or n in libs]
    versions = candidates(names, arch, strict=not libraries_only)
    return {n: versions[n] for n in names if n in versions}


def resolved(
    arch: str, packages: Sequence[str], libraries_only: bool, cache: Path
) -> dict[str, str]:
    """`resolve`, remembered in the cache until apt's package lists change (apt-cache takes
    tens of seconds on a busy machine, and every arm64 pack asks the same question)."""
    lists = APT_LISTS.stat().st_mtime_ns if APT_LISTS.exists() else 0
    key = json.dumps([arch, sorted(packages), libraries_only, lists]).encode()
    path = cache / f".resolved-{hashlib.sha256(key).hexdigest()[:24]}.json"
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(path.read_text())
        if isinstance(found, dict):
            return {str(k): str(v) for k, v in found.items()}
    versions = resolve(arch, packages, libraries_only)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(versions))
    tmp.replace(path)  # another process may write the same answer: either is whole
    return versions


def unpacked(
    package: str, arch: str, cache: Path | None = None, version: str | None = None
) -> Path:
    """The cached `dpkg -x` tree of PKG:ARCH at apt's candidate version, fetched on first use."""
    cache = cache or deb_cache()
    version = version or candidate(package, arch)
    dest = cache / f"{package}_{version.replace(':', '%3a')}_{arch}"
    if dest.is_dir():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 (apt's _apt user writes the download here)
        tools.run(["apt-get", "download", "-q", f"{package}:{arch}={version}"], cwd=Path(tmp))
        (deb,) = Path(tmp).glob("*.deb")
        tree = Path(tmp) / "tree"
        tools.run(["dpkg", "-x", str(deb), str(tree)])
        with contextlib.suppress(OSError):  # another process unpacked it first
            tree.rename(dest)
    return dest


def cached(package: str, arch: str, cache: Path | None = None) -> Path | None:
    """The newest unpacked PKG:ARCH already in the cache, without asking apt (offline)."""
    cache = cache or deb_cache()
    found = sorted(cache.glob(f"{package}_*_{arch}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


class Sysroot:
    """Unpacked packages of one architecture, searched in order like one tree."""

    def __init__(self, arch: str, roots: Iterable[Path]) -> None:
        self.arch = arch
        self.roots = list(roots)
        triplet = TRIPLETS.get(arch, "")
        self.lib_dirs = [d.format(triplet=triplet) for d in LIB_DIRS]

    @classmethod
    def fetch(
        cls,
        arch: str,
        packages: Sequence[str],
        cache: Path | None = None,
        libraries_only: bool = False,
    ) -> Sysroot:
        """PACKAGES and what they depend on; with `libraries_only`, only the library
        packages of that closure (what programs load), not the interpreters and tools
        that package scripts need (perl, python3, debconf)."""
        versions = resolved(arch, packages, libraries_only, cache or deb_cache())
        return cls(arch, [unpacked(name, arch, cache, v) for name, v in versions.items()])

    def find(self, rel: str) -> tuple[Path, str] | None:
        """(package root, path inside it) of `rel`, following symlinks inside the sysroot."""
        rel = rel.lstrip("/")
        for _ in range(16):
            for root in self.roots:
                path = root / rel
                if path.is_symlink():
                    target = os.readlink(path)
                    rel = os.path.normpath(
                        target.lstrip("/") if target.startswith("/") else Path(rel).parent / target
                    )
                    break
                if path.is_file():
                    return root, rel
            else:
                return None
        return None

    def library(self, soname: str) -> str | None:
        for d in self.lib_dirs:
            if self.find(f"{d}/{soname}") is not None:
                return f"{d}/{soname}"
        return None


def elf_needs(path: Path) -> tuple[list[str], str | None]:
    """(DT_NEEDED sonames, PT_INTERP) of an ELF file, read without running it."""
    out = tools.run([tools.require("readelf", "binutils"), "-d", "-l", "-W", str(path)])
    interp = _INTERP.search(out)
    return _NEEDED.findall(out), interp.group(1) if interp else None


def install(stage: Path, sysroot: Sysroot, rel: str, dest: str | None = None) -> None:
    """Copy `rel` from the sysroot to `stage` (at `dest`), with every library it needs.

    Every library is found first: a program whose library is missing raises
    ImageError and leaves the stage as it was.
    """
    for source, dst_rel, real in plan(sysroot, rel, dest or rel):
        _copy(source, stage, dst_rel, real)


def plan(sysroot: Sysroot, rel: str, dest: str) -> list[tuple[Path, str, str]]:
    """(file in the sysroot, path in the stage, its real path) for `rel` and its libraries."""
    pending = [(rel, dest)]
    done: set[str] = set()
    copies = []
    while pending:
        src_rel, dst_rel = pending.pop()
        if dst_rel in done:
            continue
        done.add(dst_rel)
        found = sysroot.find(src_rel)
        if found is None:
            raise ImageError(f"{src_rel} is in none of the {sysroot.arch} packages fetched")
        root, real = found
        copies.append((root / real, dst_rel, real))
        needed, interp = elf_needs(root / real)
        if interp:
            pending.append((interp, interp.lstrip("/")))
        for soname in needed:
            lib = sysroot.library(soname)
            if lib is None:
                raise ImageError(f"{soname} (needed by {src_rel}) is in no {sysroot.arch} package")
            pending.append((lib, lib))
    return copies


def _copy(source: Path, stage: Path, dest: str, real: str) -> None:
    """Put `source` at stage/real, and a symlink at stage/dest when the names differ.

    A symlink already at stage/real is a busybox applet (e.g. sbin/mke2fs): the real
    program replaces it.
    """
    target = stage / real
    if target.is_symlink():
        target.unlink()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    if dest.lstrip("/") != real:
        link = stage / dest.lstrip("/")
        if link.is_symlink() and os.path.realpath(link) != os.path.realpath(target):
            link.unlink()  # an applet link at the program's usual path
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(target, link.parent))
