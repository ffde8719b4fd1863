"""The tiny test image: Debian's busybox-static and a Debian kernel, in seconds.

`build_tiny_tree(dest, kernel_cache)` is shared by the test suite, `make demo`
and the lab: it fetches the kernel package that `linux-image-<arch>` depends
on (`apt-get download`, cached in `kernel_cache` across runs, unpacked once
with `dpkg -x`) and lays out a tree with busybox, the vmlinuz, and only the
modules the initramfs wants (with their dependencies) plus a few more, so
the tree stays about 20 MB instead of the package's 400 MB.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from corral.images import foreign, modules, tools, tree
from corral.images.debootstrap import host_architecture
from corral.images.errors import ImageError
from corral.images.initramfs import host_busybox, link_applets

EXTRA_MODULES = ("loop", "squashfs", "isofs", "vfat", "9p", "9pnet_virtio", "virtio_console")
ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "group": "root:x:0:\n",
    "hostname": "tiny\n",
    "os-release": 'NAME="corral tiny"\nID=corral-tiny\nPRETTY_NAME="corral tiny image"\n',
}


def kernel_package(arch: str) -> str:
    """The versioned package the `linux-image-<arch>` metapackage depends on."""
    out = tools.run(["apt-cache", "depends", f"linux-image-{arch}"])
    match = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if not match:
        raise ImageError(f"apt-cache: linux-image-{arch} depends on no kernel package")
    return match.group(1)


def _download(cache: Path, package: str) -> Path:
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 (apt's _apt user writes the download here)
        tools.run(["apt-get", "download", "-q", package], cwd=Path(tmp))
        (deb,) = Path(tmp).glob("*.deb")
        return deb.rename(cache / deb.name)


def kernel_deb(cache: Path, arch: str) -> Path:
    """The cached kernel .deb, downloaded on first use; offline, the newest cached one."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        package = kernel_package(arch)
    except ImageError:
        package = None
    if package:
        debs = sorted(cache.glob(f"{package}_*_{arch}.deb"))
        return debs[-1] if debs else _download(cache, package)
    debs = sorted(cache.glob(f"linux-image-*_{arch}.deb"))
    if not debs:
        raise ImageError(f"no kernel package found by apt-cache and none cached in {cache}")
    return debs[-1]


def fetch_kernel(cache: Path, arch: str | None = None) -> Path:
    """A directory holding the unpacked kernel package (boot/, lib/modules/)."""
    deb = kernel_deb(cache, arch or host_architecture())
    unpacked = cache / deb.name.removesuffix(".deb")
    if not unpacked.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
        try:
            tools.run(["dpkg", "-x", str(deb), str(tmp)])
            with contextlib.suppress(OSError):  # another process unpacked it first
                tmp.rename(unpacked)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return unpacked


def install_busybox(dest: Path, arch: str) -> None:
    """busybox-static of `arch`: the host's own, or the package of that architecture."""
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    if arch == host_architecture():
        shutil.copy(host_busybox(), dest / "bin/busybox")
    else:
        shutil.copy(foreign.unpacked("busybox-static", arch) / "bin/busybox", dest / "bin/busybox")
    link_applets(dest)


def install_kernel(dest: Path, kernel_root: Path) -> str:
    (vmlinuz,) = (kernel_root / "boot").glob("vmlinuz-*")
    version = vmlinuz.name.removeprefix("vmlinuz-")
    (dest / "boot").mkdir(exist_ok=True)
    shutil.copy(vmlinuz, dest / "boot" / vmlinuz.name)
    config = kernel_root / "boot" / f"config-{version}"
    if config.is_file():
        shutil.copy(config, dest / "boot" / config.name)
    # Raspberry Pi device trees (arm64 kernels ship them): the Pi firmware loads them by TFTP
    dtbs = kernel_root / "usr" / "lib" / f"linux-image-{version}" / "broadcom"
    for dtb in sorted(dtbs.glob("bcm27*-rpi-*.dtb")):
        (dest / dtbs.relative_to(kernel_root)).mkdir(parents=True, exist_ok=True)
        shutil.copy(dtb, dest / dtbs.relative_to(kernel_root) / dtb.name)
    mods = modules.ModuleTree(kernel_root / "lib" / "modules" / version)
    chosen, _missing = mods.closure(modules.BOOT_MODULES + EXTRA_MODULES)
    modules.copy_modules(mods, chosen, dest, version)
    return version


def build_tiny_tree(dest: Path, kernel_cache: Path, arch: str | None = None) -> str:
    """Lay out the tiny image at `dest` (created, must not exist); return its kernel version.

    `arch` (a Debian architecture, the host's by default) chooses busybox and kernel packages.
    """
    arch = arch or host_architecture()
    dest.mkdir(parents=True)
    install_busybox(dest, arch)
    version = install_kernel(dest, fetch_kernel(kernel_cache, arch))
    (dest / "etc").mkdir(exist_ok=True)
    for name, text in ETC.items():
        (dest / "etc" / name).write_text(text)
    (dest / "root").mkdir(mode=0o700)
    tree.ensure_mount_points(dest)
    return version
