"""`pack_image`: the boot artifacts of an image, rebuilt only when the image changed.

    pack_image(app, name, server_url) -> Artifacts

Artifacts live in `$CORRAL_HOME/artifacts/<sha256>` (see `artifact_path`);
their record is stored in the image's spec, so the HTTP server and boot
scripts find the kernel, initramfs, packed image and torrent by name.
A tree fingerprint (paths, sizes, mtimes) says whether the image changed
since the last pack; a changed server URL rebuilds only the torrent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from corral.app import Corral
from corral.images import api, catalog, initramfs, tree
from corral.images.cpio import CpioWriter
from corral.images.errors import ImageError, NoKernel
from corral.images.pack import ZstdSink, pack_tree
from corral.images.progress import QUIET, Reporter
from corral.images.records import (
    ArtifactFile,
    Artifacts,
    Image,
    Initramfs,
    Kernel,
    Torrent,
    artifact_path,
)
from corral.images.store import new_artifact, store_bytes, store_file
from corral.images.torrent import make_torrent

__all__ = ["artifact_path", "gc_artifacts", "pack_image"]


def require_kernel(image: Image) -> Kernel:
    kernel = image.kernel
    if kernel is None:
        found = ", ".join(k.vmlinuz for k in image.kernels) or "no boot/vmlinuz-*"
        raise NoKernel(
            f"image {image.name!r} has no kernel to boot ({found} with a matching "
            "lib/modules/VERSION); install one, e.g. "
            f"`corral image exec {image.name} -- apt-get install linux-image-amd64`"
        )
    return kernel


def _check_url(server_url: str | None, image: Image) -> str:
    url = server_url or (image.artifacts.server_url if image.artifacts else None)
    if not url:
        raise ImageError("no server URL: give one, e.g. --server http://10.0.0.1:8080")
    if not url.startswith(("http://", "https://")):
        raise ImageError(f"server URL {url!r} must start with http:// or https://")
    return url.rstrip("/")


def _present(home: Path, arts: Artifacts) -> bool:
    return all(f.path(home).is_file() for f in arts.files())


def build_torrent(home: Path, image: ArtifactFile, name: str, url: str) -> Torrent:
    made = make_torrent(image.path(home), f"{name}.tar.zst", image.sha256, url)
    art = store_bytes(home, made.data, "torrent")
    return Torrent(
        **art.model_dump(),
        info_hash=made.info_hash,
        piece_size=made.piece_size,
        tracker=made.tracker,
        web_seed=made.web_seed,
    )


def single_stage(home: Path, root: Path) -> ArtifactFile:
    """The whole image as one zstd cpio initrd (Warewulf-style, boot with rdinit=/sbin/init)."""
    with new_artifact(home) as out:
        zw = ZstdSink(out)
        writer = CpioWriter(zw)
        writer.add_tree(root)
        writer.close()
        zw.close()
        return out.commit(home, "cpio+zstd")


@contextlib.contextmanager
def _cleanup_on_failure(app: Corral, created: list[ArtifactFile]) -> Iterator[None]:
    """Remove this pack's new artifacts if it fails, unless another image uses them."""
    try:
        yield
    except BaseException:
        keep = _referenced(app)
        for art in created:
            if art.sha256 not in keep:
                art.path(app.settings.paths.home).unlink(missing_ok=True)
        raise


def _referenced(app: Corral) -> set[str]:
    return {
        f.sha256
        for image in api.list_images(app)
        if image.artifacts
        for f in image.artifacts.files()
    }


def pack_image(
    app: Corral,
    name: str,
    server_url: str | None = None,
    with_single_stage: bool = False,
    force: bool = False,
    reporter: Reporter = QUIET,
) -> Artifacts:
    """Build (or reuse) the artifacts of image NAME for the server at `server_url`."""
    home = app.settings.paths.home
    image = api.refresh(app, name)
    url = _check_url(server_url, image)
    kernel = require_kernel(image)
    old = image.artifacts
    fresh = old is not None and old.fingerprint == image.fingerprint and _present(home, old)
    if fresh and old and not force and (old.single_stage or not with_single_stage):
        if old.server_url == url:
            return old
        arts = old.model_copy(
            update={"server_url": url, "torrent": build_torrent(home, old.image, name, url)}
        )
    else:
        arts = _build(app, image, kernel, url, with_single_stage, reporter)
    _save(app, name, image.fingerprint, arts)
    return arts


def _build(
    app: Corral, image: Image, kernel: Kernel, url: str, with_single: bool, reporter: Reporter
) -> Artifacts:
    home, root = app.settings.paths.home, api.rootfs(app, image.name)
    created: list[ArtifactFile] = []
    with _cleanup_on_failure(app, created):
        reporter.start(f"packing {image.name}", image.size)
        packed = pack_tree(home, root, reporter.advance)
        created.append(packed.artifact)
        reporter.start("kernel, initramfs, torrent", None)
        created.append(store_file(home, root / kernel.vmlinuz, "bzImage"))
        source = initramfs.KernelSource(root, kernel.version)
        created.append(initramfs.build_initramfs(home, source))
        created.append(build_torrent(home, packed.artifact, image.name, url))
        if with_single:
            reporter.start("single-stage initrd", None)
            created.append(single_stage(home, root))
        if tree.fingerprint(root) != image.fingerprint:
            raise ImageError(f"image {image.name!r} changed while being packed; pack again")
    initrd = created[2]
    assert isinstance(initrd, Initramfs)
    torrent = created[3]
    assert isinstance(torrent, Torrent)
    return Artifacts(
        fingerprint=image.fingerprint,
        digest=packed.digest,
        server_url=url,
        built=time.time(),
        kernel_version=kernel.version,
        image=packed.artifact,
        kernel=created[1],
        initramfs=initrd,
        torrent=torrent,
        single_stage=created[4] if with_single else None,
    )


def _save(app: Corral, name: str, fingerprint: str, arts: Artifacts) -> None:
    with app.store.transaction() as conn:
        image = catalog.get(conn, name)
        if image.fingerprint != fingerprint:
            raise ImageError(f"image {name!r} changed while being packed; pack again")
        catalog.update(conn, image.model_copy(update={"artifacts": arts, "digest": arts.digest}))


def gc_artifacts(app: Corral) -> list[str]:
    """Remove artifacts no image record names; return their sha256s."""
    keep = _referenced(app)
    directory = app.settings.paths.artifacts
    removed = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if path.is_file() and len(path.name) == 64 and path.name not in keep:
            path.unlink()
            removed.append(path.name)
    return removed
