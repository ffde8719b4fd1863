"""The image API: what `corral image ...`, the HTTP server and the lab call.

Each function takes a `Home` (the database and CORRAL_HOME's paths; the
application object is one), not the application itself: images sit below it.

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

from corral.images import catalog, debootstrap, presets, rsync, sources, tree
from corral.images.archive import content_digest
from corral.images.errors import ImageError
from corral.images.progress import QUIET, Reporter
from corral.images.records import Image
from corral.inventory.errors import Conflict
from corral.inventory.types import check_name
from corral.store.db import Home
from corral.store.inventory import read_inventory


def images_dir(home: Home) -> Path:
    return home.paths.images


def rootfs(home: Home, name: str) -> Path:
    return images_dir(home) / name / "rootfs"


def list_images(home: Home) -> list[Image]:
    with home.store.transaction() as conn:
        return catalog.all_images(conn)


def get_image(home: Home, name: str) -> Image:
    with home.store.transaction() as conn:
        return catalog.get(conn, name)


def valid_name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise ImageError(f"image name: {exc}") from None


def _check_free(home: Home, name: str) -> None:
    with home.store.transaction() as conn:
        if catalog.find(conn, name) is not None:
            raise Conflict(f"image {name!r} already exists")
    if (images_dir(home) / name).exists():
        raise Conflict(f"{images_dir(home) / name} exists but no image record does; remove it")


@contextlib.contextmanager
def staging(home: Home, name: str, what: str) -> Iterator[Path]:
    """A fresh staging directory holding an empty `rootfs`; removed unless committed."""
    _check_free(home, name)
    images_dir(home).mkdir(parents=True, exist_ok=True, mode=0o700)
    stage = Path(tempfile.mkdtemp(dir=images_dir(home), prefix=f".staging-{name}-"))
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


def commit(home: Home, stage: Path, name: str, source: str, reporter: Reporter) -> Image:
    """Record the staged tree and move it to images/<name>/ in one step."""
    image = describe_tree(stage / "rootfs", name, source, reporter)
    shutil.rmtree(stage / "work", ignore_errors=True)
    with home.store.transaction() as conn:
        catalog.insert(conn, image)
        stage.chmod(0o755)
        stage.rename(images_dir(home) / name)
    return image


def import_image(home: Home, source: str, name: str, reporter: Reporter = QUIET) -> Image:
    """Import SOURCE (see corral.images.sources) as image NAME."""
    name = valid_name(name)
    src = sources.parse_source(source)
    with staging(home, name, f"importing {source}") as stage:
        (stage / "work").mkdir()
        sources.fetch(src, stage / "rootfs", stage / "work", reporter)
        label = str(Path(source).resolve()) if src.kind != "container" else source
        return commit(home, stage, name, label, reporter)


def build_image(
    home: Home,
    name: str,
    suite: str,
    include: Sequence[str] = (),
    mirror: str | None = None,
    reporter: Reporter = QUIET,
    preset: str = presets.DEFAULT_PRESET,
    exclude: Sequence[str] = (),
    arch: str | None = None,
) -> Image:
    """Build a Debian image: debootstrap minbase plus the preset's packages, then cleaned.

    See `corral.images.presets` for what each preset installs and
    `debootstrap.finish_tree` for what is enabled and removed afterwards. An
    `arch` other than the server's is built in two stages (`--foreign`, then
    the second stage under QEMU user emulation: `debootstrap.check_emulation`).
    """
    name = valid_name(name)
    host = debootstrap.host_architecture()
    arch = arch or host
    foreign = arch != host
    if foreign:
        debootstrap.check_emulation(arch)
    wanted = presets.packages(preset, arch, include, exclude)
    mirror = mirror or debootstrap.configured_mirror()
    with staging(home, name, f"building {suite} ({arch})") as stage:
        root = stage / "rootfs"
        argv = debootstrap.debootstrap_argv(suite, root, mirror, wanted, arch=arch, foreign=foreign)
        debootstrap.run_debootstrap(argv, reporter)
        if foreign:
            debootstrap.run_second_stage(root, reporter)
        units = presets.ENABLED_UNITS if presets.INIT_PACKAGE in wanted else ()
        removed = debootstrap.finish_tree(root, units)
        reporter.note(f"removed {removed / (1 << 20):.0f} MiB of caches and per-node files")
        return commit(home, stage, name, f"debootstrap:{suite} preset={preset} {mirror}", reporter)


def node_address(home: Home, node: str) -> str:
    """A node's reserved address on its primary network, or NODE itself as a host name."""
    inv = read_inventory(home.store)
    record = inv.nodes.get(node)
    if record is None:
        return node
    net = inv.primary_network(record)
    iface = record.interface_on(net.name) if net else None
    return str(iface.ip) if iface and iface.ip else node


def grab_image(
    home: Home,
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
    source = rsync.remote_source(node_address(home, node), user) if ssh is not None else node
    with staging(home, name, f"grabbing {node}") as stage:
        rsync.copy_tree(rsync.rsync_argv(source, stage / "rootfs", excludes, ssh), reporter)
        machine_id = stage / "rootfs/etc/machine-id"
        if machine_id.parent.is_dir() and not machine_id.exists():
            machine_id.touch(0o444)  # empty: systemd makes a new id on each node's first boot
        return commit(home, stage, name, f"grab:{source}", reporter)


def users_of(home: Home, name: str) -> list[str]:
    inv = read_inventory(home.store)
    users = [f"profile {p.name}" for p in inv.profiles.values() if p.image == name]
    return users + [f"node {n.name}" for n in inv.nodes.values() if n.image == name]


def delete_image(home: Home, name: str) -> None:
    """Delete image NAME and its tree; refused while a profile or node uses it."""
    users = users_of(home, name)
    if users:
        raise Conflict(f"image {name!r} is used by {', '.join(users)}; change them first")
    trash = images_dir(home) / f".trash-{name}-{os.getpid()}"
    with home.store.transaction() as conn:
        catalog.get(conn, name)
        catalog.delete(conn, name)
        if (images_dir(home) / name).exists():
            (images_dir(home) / name).rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def rename_image(home: Home, old: str, new: str) -> Image:
    """Rename an image and its directory; refused while a profile or node uses it."""
    new = valid_name(new)
    users = users_of(home, old)
    if users:
        raise Conflict(f"image {old!r} is used by {', '.join(users)}; change them first")
    _check_free(home, new)
    with home.store.transaction() as conn:
        image = catalog.get(conn, old).model_copy(update={"name": new})
        catalog.update(conn, image, old_name=old)
        (images_dir(home) / old).rename(images_dir(home) / new)
    return image


def refresh(home: Home, name: str) -> Image:
    """Rescan the tree; if it changed, record that (digest unknown until the next pack)."""
    root = rootfs(home, name)
    stats = tree.scan(root)
    with home.store.transaction() as conn:
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


def run_in_image(home: Home, name: str, command: Sequence[str] = ()) -> int:
    """Run COMMAND (default: a login shell) inside the image; return its exit code.

    The image is rescanned afterwards: if anything changed, its artifacts are
    rebuilt on the next pack.
    """
    if os.geteuid() != 0:
        raise ImageError("corral image shell/exec needs root (it mounts /proc, /sys, /dev)")
    image = refresh(home, name)  # the kernels as they are now, e.g. after an unpack
    root = rootfs(home, name)
    argv = chroot_argv(image, root, list(command) or default_shell(root))
    try:
        code = subprocess.run(argv, check=False).returncode
    finally:
        refresh(home, name)
    return code
