"""`pack_image`: the boot artifacts of an image, rebuilt only when the image changed.

    pack_image(home, name, server_url) -> Artifacts

Artifacts live in `$CORRAL_HOME/artifacts/<sha256>` (see `artifact_path`);
their record is stored in the image's spec, so the HTTP server and boot
scripts find the kernel, initramfs, packed image and torrent by name.
A tree fingerprint (paths, sizes, mtimes) says whether the image changed
since the last pack; a changed server URL rebuilds only the torrent.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from corral import pki
from corral.images import api, catalog, foreign, initramfs, presets, tree
from corral.images.cpio import CpioWriter
from corral.images.debootstrap import host_architecture
from corral.images.errors import ImageError, NoInit, NoKernel
from corral.images.pack import ZstdSink, pack_tree
from corral.images.progress import QUIET, Reporter
from corral.images.records import (
    ArtifactFile,
    Artifacts,
    Image,
    Kernel,
    Torrent,
    artifact_path,
)
from corral.images.store import new_artifact, store_bytes, store_file
from corral.images.torrent import make_torrent
from corral.store.db import Home

__all__ = ["artifact_path", "gc_artifacts", "pack_image"]


def _add_package(image: Image, package: str) -> str:
    return f"add {package}, e.g. `corral image exec {image.name} -- apt-get install {package}`"


def require_kernel(image: Image) -> Kernel:
    """The image's kernel; one line naming the package to add if it has none."""
    kernel = image.kernel
    if kernel is None:
        found = ", ".join(k.vmlinuz for k in image.kernels) or "no boot/vmlinuz-*"
        arch = image.architecture if image.architecture in presets.KERNEL_PACKAGES else None
        package = presets.kernel_package(arch or host_architecture())
        raise NoKernel(
            f"image {image.name!r} has no kernel to boot ({found} with a matching "
            f"lib/modules/VERSION): {_add_package(image, package)}"
        )
    return kernel


def require_init(image: Image, root: Path) -> str:
    """The image's init; one line naming the package to add if it has none."""
    found = tree.init(root)
    if found is None:
        raise NoInit(
            f"image {image.name!r} has no init (/{' or /'.join(tree.INITS)}): "
            f"{_add_package(image, presets.INIT_PACKAGE)}"
        )
    return found


def _check_url(server_url: str | None, image: Image) -> str:
    url = server_url or (image.artifacts.server_url if image.artifacts else None)
    if not url:
        raise ImageError("no server URL: give one, e.g. --server http://10.0.0.1:8080")
    if not url.startswith(("http://", "https://")):
        raise ImageError(f"server URL {url!r} must start with http:// or https://")
    return url.rstrip("/")


def _present(home_dir: Path, arts: Artifacts) -> bool:
    return all(f.path(home_dir).is_file() for f in arts.files())


def build_torrent(home_dir: Path, image: ArtifactFile, name: str, url: str) -> Torrent:
    made = make_torrent(image.path(home_dir), f"{name}.tar.zst", image.sha256, url)
    art = store_bytes(home_dir, made.data, "torrent")
    return Torrent(
        **art.model_dump(),
        info_hash=made.info_hash,
        piece_size=made.piece_size,
        tracker=made.tracker,
        web_seed=made.web_seed,
    )


def single_stage(home_dir: Path, root: Path) -> ArtifactFile:
    """The whole image as one zstd cpio initrd (Warewulf-style, boot with rdinit=/sbin/init)."""
    with new_artifact(home_dir) as out:
        zw = ZstdSink(out)
        writer = CpioWriter(zw)
        writer.add_tree(root)
        writer.close()
        zw.close()
        return out.commit(home_dir, "cpio+zstd")


@contextlib.contextmanager
def _cleanup_on_failure(home: Home, created: list[ArtifactFile]) -> Iterator[None]:
    """Remove this pack's new artifacts if it fails, unless another image uses them."""
    try:
        yield
    except BaseException:
        keep = _referenced(home)
        for art in created:
            if art.sha256 not in keep:
                art.path(home.paths.home).unlink(missing_ok=True)
        raise


def _referenced(home: Home) -> set[str]:
    return {
        f.sha256
        for image in api.list_images(home)
        if image.artifacts
        for f in image.artifacts.files()
    }


def pack_image(
    home: Home,
    name: str,
    server_url: str | None = None,
    with_single_stage: bool = False,
    force: bool = False,
    reporter: Reporter = QUIET,
) -> Artifacts:
    """Build (or reuse) the artifacts of image NAME for the server at `server_url`."""
    home_dir = home.paths.home
    keys = pki.Pki(home.paths.pki)
    pki.ensure(keys)  # the initramfs carries the CA and the signing key's public half
    image = api.refresh(home, name)
    url = _check_url(server_url, image)
    kernel = require_kernel(image)
    require_init(image, api.rootfs(home, name))
    old = image.artifacts
    fresh = old is not None and old.fingerprint == image.fingerprint and _present(home_dir, old)
    fresh = fresh and old is not None and old.signature is not None  # older packs: rebuild
    if fresh and old and not force and (old.single_stage or not with_single_stage):
        if old.server_url == url:
            return old
        arts = old.model_copy(
            update={"server_url": url, "torrent": build_torrent(home_dir, old.image, name, url)}
        )
    else:
        arts = _build(home, image, kernel, url, with_single_stage, reporter)
    arts = sign(keys, arts)
    _save(home, name, image.fingerprint, arts)
    return arts


def sign(keys: pki.Pki, arts: Artifacts) -> Artifacts:
    """The artifacts with the server's signature of the image's sha256 and info-hash."""
    raw = pki.sign_image(keys, arts.image.sha256, arts.torrent.info_hash)
    return arts.model_copy(update={"signature": base64.b64encode(raw).decode()})


def _build(
    home: Home, image: Image, kernel: Kernel, url: str, with_single: bool, reporter: Reporter
) -> Artifacts:
    home_dir, root = home.paths.home, api.rootfs(home, image.name)
    created: list[ArtifactFile] = []
    with _cleanup_on_failure(home, created):
        reporter.start(f"packing {image.name}", image.size)
        disk_initrd = distribution_initrd(root, kernel)
        apart = [disk_initrd.relative_to(root).as_posix()] if disk_initrd else []
        packed = pack_tree(home_dir, root, reporter.advance, leave_out=apart)
        created.append(packed.artifact)
        reporter.start("kernel, initramfs, torrent", None)
        kernel_file = store_file(home_dir, root / kernel.vmlinuz, "bzImage")
        created.append(kernel_file)
        source = initramfs.KernelSource(root, kernel.version)
        keys = pki.Pki(home.paths.pki)
        initrd = initramfs.build_initramfs(home_dir, source, keys)
        created += [initrd, *(f for f in (initrd.tools, initrd.base, initrd.nics) if f)]
        if source.arch == "arm64":  # its network loader (corral.services.grub), fetched now
            foreign.unpacked(foreign.ARM64_LOADER_PACKAGE, "arm64")
        torrent = build_torrent(home_dir, packed.artifact, image.name, url)
        created.append(torrent)
        single = None
        if with_single:
            reporter.start("single-stage initrd", None)
            single = single_stage(home_dir, root)
            created.append(single)
        disk_file = None
        if disk_initrd is not None:
            disk_file = store_file(home_dir, disk_initrd, "initrd")
            created.append(disk_file)
        if tree.fingerprint(root) != image.fingerprint:
            raise ImageError(f"image {image.name!r} changed while being packed; pack again")
    return Artifacts(
        fingerprint=image.fingerprint,
        digest=packed.digest,
        server_url=url,
        built=time.time(),
        kernel_version=kernel.version,
        image=packed.artifact,
        kernel=kernel_file,
        initramfs=initrd,
        torrent=torrent,
        single_stage=single,
        disk_initrd=disk_file,
    )


def distribution_initrd(root: Path, kernel: Kernel) -> Path | None:
    """The image's own initrd for `kernel` (initramfs-tools made it at build time), if any.

    Packed apart from the image: a stateless node boots corral's initramfs and never reads
    it, a stateful install puts it on the disk for GRUB instead of running
    update-initramfs on the node (minutes under emulation)."""
    path = root / "boot" / f"initrd.img-{kernel.version}"
    return path if path.is_file() and not path.is_symlink() else None


def _save(home: Home, name: str, fingerprint: str, arts: Artifacts) -> None:
    with home.store.transaction() as conn:
        image = catalog.get(conn, name)
        if image.fingerprint != fingerprint:
            raise ImageError(f"image {name!r} changed while being packed; pack again")
        catalog.update(conn, image.model_copy(update={"artifacts": arts, "digest": arts.digest}))


def gc_artifacts(home: Home) -> list[str]:
    """Remove artifacts no image record names; return their sha256s."""
    keep = _referenced(home)
    directory = home.paths.artifacts
    removed = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if path.is_file() and len(path.name) == 64 and path.name not in keep:
            path.unlink()
            removed.append(path.name)
    return removed
