"""The image API: what `corral image ...`, the HTTP server and the lab call.

Every command that creates an image works in a staging directory beside the
images (`$CORRAL_HOME/images/.staging-*`) and renames it into place only
once the tree is complete and its record is written, so a failure (a corrupt
archive, a full disk, Ctrl-C) leaves neither a half tree nor a record.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from corral.app import Corral
from corral.images import catalog, debootstrap, rsync, sources, tree
from corral.images.archive import content_digest
from corral.images.errors import ImageError
from corral.images.progress import QUIET, Reporter
from corral.images.records import Image
from corral.inventory.errors import Conflict
from corral.inventory.types import check_name


def images_dir(app: Corral) -> Path:
    return app.settings.paths.images


def rootfs(app: Corral, name: str) -> Path:
    return images_dir(app) / name / "rootfs"


def list_images(app: Corral) -> list[Image]:
    with app.store.transaction() as conn:
        return catalog.all_images(conn)


def get_image(app: Corral, name: str) -> Image:
    with app.store.transaction() as conn:
        return catalog.get(conn, name)


def valid_name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise ImageError(f"image name: {exc}") from None


def _check_free(app: Corral, name: str) -> None:
    with app.store.transaction() as conn:
        if catalog.find(conn, name) is not None:
            raise Conflict(f"image {name!r} already exists")
    if (images_dir(app) / name).exists():
        raise Conflict(f"{images_dir(app) / name} exists but no image record does; remove it")


@contextlib.contextmanager
def staging(app: Corral, name: str, what: str) -> Iterator[Path]:
    """A fresh staging directory holding an empty `rootfs`; removed unless committed."""
    _check_free(app, name)
    images_dir(app).mkdir(parents=True, exist_ok=True, mode=0o700)
    stage = Path(tempfile.mkdtemp(dir=images_dir(app), prefix=f".staging-{name}-"))
    try:
        (stage / "rootfs").mkdir()
        yield stage
    except OSError as exc:
        raise ImageError(f"{what}: {exc.strerror or exc} ({exc.filename or stage})") from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def describe_tree(root: Path, name: str, source: str, reporter: Reporter = QUIET) -> Image:
    """A new record for the tree at `root`: scan, architecture, kernels, content digest."""
    tree.ensure_mount_points(root)
    stats = tree.scan(root)
    reporter.start("computing digest", stats.size)
    digest = content_digest(root, reporter.advance)
    return Image(
        name=name,
        architecture=tree.architecture(root),
        digest=digest,
        size=stats.size,
        files=stats.files,
        kernels=tree.kernels(root),
        source=source,
        created=time.time(),
        fingerprint=tree.fingerprint(root),
    )


def commit(app: Corral, stage: Path, name: str, source: str, reporter: Reporter) -> Image:
    """Record the staged tree and move it to images/<name>/ in one step."""
    image = describe_tree(stage / "rootfs", name, source, reporter)
    shutil.rmtree(stage / "work", ignore_errors=True)
    with app.store.transaction() as conn:
        catalog.insert(conn, image)
        stage.chmod(0o755)
        stage.rename(images_dir(app) / name)
    return image


def import_image(app: Corral, source: str, name: str, reporter: Reporter = QUIET) -> Image:
    """Import SOURCE (see corral.images.sources) as image NAME."""
    name = valid_name(name)
    src = sources.parse_source(source)
    with staging(app, name, f"importing {source}") as stage:
        (stage / "work").mkdir()
        sources.fetch(src, stage / "rootfs", stage / "work", reporter)
        label = str(Path(source).resolve()) if src.kind != "container" else source
        return commit(app, stage, name, label, reporter)


def build_image(
    app: Corral,
    name: str,
    suite: str,
    include: Sequence[str] = (),
    mirror: str | None = None,
    reporter: Reporter = QUIET,
) -> Image:
    """Build a Debian image with debootstrap (minbase) from the configured mirror."""
    name = valid_name(name)
    mirror = mirror or debootstrap.configured_mirror()
    with staging(app, name, f"building {suite}") as stage:
        argv = debootstrap.debootstrap_argv(suite, stage / "rootfs", mirror, include)
        debootstrap.run_debootstrap(argv, reporter)
        return commit(app, stage, name, f"debootstrap:{suite} {mirror}", reporter)


def node_address(app: Corral, node: str) -> str:
    """A node's reserved address on its primary network, or NODE itself as a host name."""
    inv = app.read()
    record = inv.nodes.get(node)
    if record is None:
        return node
    net = inv.primary_network(record)
    iface = record.interface_on(net.name) if net else None
    return str(iface.ip) if iface and iface.ip else node


def grab_image(
    app: Corral,
    node: str,
    name: str,
    excludes: Sequence[str] = rsync.GRAB_EXCLUDES,
    ssh: Sequence[str] | None = tuple(rsync.ssh_command()),
    user: str = "root",
    reporter: Reporter = QUIET,
) -> Image:
    """Capture NODE's root filesystem with rsync over ssh into a new image NAME.

    With `ssh=None`, NODE is a local directory (rsync's local mode; e.g. a
    node's disk mounted here), through the same code path.
    """
    name = valid_name(name)
    source = rsync.remote_source(node_address(app, node), user) if ssh is not None else node
    with staging(app, name, f"grabbing {node}") as stage:
        rsync.copy_tree(rsync.rsync_argv(source, stage / "rootfs", excludes, ssh), reporter)
        machine_id = stage / "rootfs/etc/machine-id"
        if machine_id.parent.is_dir() and not machine_id.exists():
            machine_id.touch(0o444)  # empty: systemd makes a new id on each node's first boot
        return commit(app, stage, name, f"grab:{source}", reporter)


def users_of(app: Corral, name: str) -> list[str]:
    inv = app.read()
    users = [f"profile {p.name}" for p in inv.profiles.values() if p.image == name]
    return users + [f"node {n.name}" for n in inv.nodes.values() if n.image == name]


def delete_image(app: Corral, name: str) -> None:
    """Delete image NAME and its tree; refused while a profile or node uses it."""
    users = users_of(app, name)
    if users:
        raise Conflict(f"image {name!r} is used by {', '.join(users)}; change them first")
    trash = images_dir(app) / f".trash-{name}-{os.getpid()}"
    with app.store.transaction() as conn:
        catalog.get(conn, name)
        catalog.delete(conn, name)
        if (images_dir(app) / name).exists():
            (images_dir(app) / name).rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def rename_image(app: Corral, old: str, new: str) -> Image:
    """Rename an image and its directory; refused while a profile or node uses it."""
    new = valid_name(new)
    users = users_of(app, old)
    if users:
        raise Conflict(f"image {old!r} is used by {', '.join(users)}; change them first")
    _check_free(app, new)
    with app.store.transaction() as conn:
        image = catalog.get(conn, old).model_copy(update={"name": new})
        catalog.update(conn, image, old_name=old)
        (images_dir(app) / old).rename(images_dir(app) / new)
    return image


def refresh(app: Corral, name: str) -> Image:
    """Rescan the tree; if it changed, record that (digest unknown until the next pack)."""
    root = rootfs(app, name)
    stats = tree.scan(root)
    with app.store.transaction() as conn:
        image = catalog.get(conn, name)
        if stats.fingerprint == image.fingerprint:
            return image
        image = image.model_copy(
            update={
                "fingerprint": stats.fingerprint,
                "size": stats.size,
                "files": stats.files,
                "kernels": tree.kernels(root),
                "architecture": tree.architecture(root),
                "digest": None,
                "changed": time.time(),
            }
        )
        catalog.update(conn, image)
    return image


def chroot_argv(image: Image, root: Path, command: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-m", "corral.images.chroot", str(root)]
    if image.kernel:
        argv += ["--release", image.kernel.version]
    return [*argv, "--machine", image.architecture, "--", *command]


def default_shell(root: Path) -> list[str]:
    for shell in ("bin/bash", "usr/bin/bash"):
        if tree.resolve(root, shell):
            return ["/" + shell, "-l"]
    return ["/bin/sh", "-l"]


def run_in_image(app: Corral, name: str, command: Sequence[str] = ()) -> int:
    """Run COMMAND (default: a login shell) inside the image; return its exit code.

    The image is rescanned afterwards: if anything changed, its artifacts are
    rebuilt on the next pack.
    """
    if os.geteuid() != 0:
        raise ImageError("corral image shell/exec needs root (it mounts /proc, /sys, /dev)")
    image = refresh(app, name)  # the kernels as they are now, e.g. after an unpack
    root = rootfs(app, name)
    argv = chroot_argv(image, root, list(command) or default_shell(root))
    try:
        code = subprocess.run(argv, check=False).returncode
    finally:
        refresh(app, name)
    return code
