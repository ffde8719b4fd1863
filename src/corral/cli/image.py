"""`corral image import|build|grab|list|show|rename|delete|shell|exec|pack|gc`.

Image commands act on this machine's $CORRAL_HOME (trees and artifacts are
local files), so they refuse --server; `image list` also works through it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from corral.app import Corral
from corral.cli.context import CliContext
from corral.cli.output import emit, err_console, output_option, success
from corral.images import api, artifacts, presets, rsync
from corral.images.debootstrap import QEMU_NAMES
from corral.images.records import Image

F = TypeVar("F", bound=Callable[..., Any])


class RichReporter:
    """Draws each step of a long image operation as a rich progress line."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, task: str, total: int | None = None) -> None:
        if self.task is not None:
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(task, total=total)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def note(self, text: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, status=text[-60:])


@contextmanager
def reporter() -> Iterator[RichReporter]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}", style="dim"),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        progress.add_task = _with_status(progress.add_task)  # type: ignore[method-assign]
        yield RichReporter(progress)


def _with_status(add: Callable[..., TaskID]) -> Callable[..., TaskID]:
    def wrapped(*args: Any, **kwargs: Any) -> TaskID:
        kwargs.setdefault("status", "")
        return add(*args, **kwargs)

    return wrapped


def local_app(ctx: CliContext) -> Corral:
    """This machine's corral: every image command but `list` works on its files."""
    return ctx.local()


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _state(image: Image) -> str:
    if image.artifacts and image.artifacts.fingerprint == image.fingerprint:
        return "packed"
    return "changed" if image.changed else "new"


@click.group()
def image() -> None:
    """OS images: import, build, grab, shell into, pack for network boot."""


@image.command("import")
@click.argument("source")
@click.argument("name")
@click.pass_obj
def import_(ctx: CliContext, /, source: str, name: str) -> None:
    """Import SOURCE as image NAME.

    SOURCE: a directory, a tarball (.tar, .tar.gz, .tar.zst), oci-archive:PATH[:TAG],
    docker-archive:PATH, oci:DIR[:TAG] or docker://REF.
    """
    with reporter() as rep:
        img = api.import_image(local_app(ctx), source, name, rep)
    success(f"image {img.name} imported: {_size(img.size)}, {img.digest}")


def _names(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@image.command("build")
@click.argument("name")
@click.option("--debootstrap", "suite", required=True, help="Debian suite, e.g. bookworm")
@click.option(
    "--preset",
    type=click.Choice(list(presets.PRESETS)),
    default=presets.DEFAULT_PRESET,
    show_default=True,
    help="Package set on top of minbase: "
    + "; ".join(f"{p.name}: {p.description}" for p in presets.PRESETS.values()),
)
@click.option("--include", help="Packages to add to the preset, comma separated")
@click.option("--exclude", help="Packages of the preset to leave out, comma separated")
@click.option("--mirror", help="Debian mirror (default: the one in apt's sources)")
@click.option(
    "--arch",
    type=click.Choice(sorted(QEMU_NAMES)),
    help="Debian architecture (default: the server's); another one is built under QEMU "
    "user emulation (qemu-user-static, binfmt; docs/boards.md)",
)
@click.pass_obj
def build(
    ctx: CliContext,
    /,
    name: str,
    suite: str,
    preset: str,
    include: str | None,
    exclude: str | None,
    mirror: str | None,
    arch: str | None,
) -> None:
    """Build image NAME with debootstrap: minbase plus a preset that boots as a server.

    The default preset `server` gives systemd, udev, systemd-networkd (enabled),
    dbus, openssh-server, chrony, ca-certificates, python3, the kernel
    and, on amd64, GRUB. The package cache, the distribution's initrd, SSH host
    keys and machine-id are removed: each node gets its own from its overlay.
    """
    with reporter() as rep:
        img = api.build_image(
            local_app(ctx),
            name,
            suite,
            _names(include),
            mirror,
            rep,
            preset=preset,
            exclude=_names(exclude),
            arch=arch,
        )
    success(f"image {img.name} built: {_size(img.size)}, {img.digest}")


def grab_excludes(app: Corral, node: str, defaults: bool = True) -> tuple[str, ...]:
    """What a grab leaves out: per-machine files, and an inventory node's overlay output."""
    if not defaults:
        return ()
    from corral.overlays.render import render_node

    if node not in app.read().nodes:
        return rsync.GRAB_EXCLUDES
    rendered = render_node(app, app.settings.paths, node).files
    return rsync.GRAB_EXCLUDES + tuple(sorted(rendered))  # absolute paths: anchored at /


@image.command("grab")
@click.argument("node")
@click.argument("name")
@click.option("--exclude", multiple=True, help="Extra rsync exclude pattern (repeatable)")
@click.option(
    "--no-default-excludes",
    is_flag=True,
    help="Drop the default excludes (per-node files and the node's overlay output)",
)
@click.option("--user", default="root", show_default=True)
@click.option("--port", type=int, help="ssh port")
@click.option(
    "--identity",
    type=click.Path(exists=True, dir_okay=False),
    help="ssh key file [default: the admin's key, for an inventory node]",
)
@click.pass_obj
def grab(
    ctx: CliContext,
    /,
    node: str,
    name: str,
    exclude: tuple[str, ...],
    no_default_excludes: bool,
    user: str,
    port: int | None,
    identity: str | None,
) -> None:
    """Capture the root filesystem of running NODE (rsync over ssh) as image NAME.

    An inventory node is reached at its reserved address, logged in to as
    `corral ssh` does (the admin's key, host keys checked against corral's
    known_hosts), and the files its overlays render (hostname, network, keys,
    the agent...) are left out: each node that boots the image gets its own.
    """
    from pathlib import Path

    from corral.cli.ssh import cluster_known_hosts
    from corral.overlays.adminkey import login_options

    app = local_app(ctx)
    inv = app.read()
    excludes = grab_excludes(app, node, not no_default_excludes) + exclude
    key = Path(identity) if identity else None
    if node in inv.nodes:
        key = key or app.settings.paths.admin_ssh_key
        if not key.is_file():
            raise click.ClickException("no admin SSH key: run 'corral init' or give --identity")
        extra = login_options(str(key), str(cluster_known_hosts(app, inv)))
        ssh = rsync.ssh_command(port, extra=extra)
    else:
        ssh = rsync.ssh_command(port, key)
    with reporter() as rep:
        img = api.grab_image(app, node, name, excludes, ssh, user, rep)
    success(f"image {img.name} grabbed from {node}: {_size(img.size)}")


@image.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List images."""
    images = ctx.actions.images()
    emit(
        [i.model_dump(mode="json", exclude={"artifacts"}) for i in images],
        output,
        ("NAME", "ARCH", "SIZE", "KERNEL", "DIGEST", "STATE", "CREATED"),
        lambda: [
            (
                i.name,
                i.architecture,
                _size(i.size),
                i.kernel.version if i.kernel else "-",
                (i.digest or "(changed)")[:19],
                _state(i),
                _when(i.created),
            )
            for i in images
        ],
    )


@image.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show image NAME with its kernels and artifacts."""
    img = api.get_image(local_app(ctx), name)
    data = img.model_dump(mode="json")
    rows = [(k, v) for k, v in data.items() if k not in ("kernels", "artifacts")]
    rows += [("kernel", f"{k.version} ({k.vmlinuz})") for k in img.kernels]
    if img.ram_needed is not None:
        data["ram_needed"] = img.ram_needed
        rows += [("ram needed (stateless)", f"{_size(img.ram_needed)} + what the OS uses")]
    if img.artifacts:
        rows += [(f"{kind} ({f.format})", f.sha256) for kind, f in img.artifacts.named_files()]
        rows += [("info hash", img.artifacts.torrent.info_hash)]
    emit(data, output, ("FIELD", "VALUE"), lambda: rows)


@image.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_obj
def rename(ctx: CliContext, /, old: str, new: str) -> None:
    """Rename image OLD to NEW (refused while profiles or nodes use it)."""
    api.rename_image(local_app(ctx), old, new)
    success(f"image {old} renamed to {new}")


@image.command("delete")
@click.argument("name")
@click.pass_obj
def delete(ctx: CliContext, /, name: str) -> None:
    """Delete image NAME (refused while profiles or nodes use it)."""
    api.delete_image(local_app(ctx), name)
    success(f"image {name} deleted")


@image.command("shell")
@click.argument("name")
@click.pass_obj
def shell(ctx: CliContext, /, name: str) -> None:
    """Open a shell inside image NAME (/proc, /sys, /dev mounted; uname -r = its kernel)."""
    sys.exit(api.run_in_image(local_app(ctx), name))


@image.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(ctx: CliContext, /, name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside image NAME: corral image exec NAME -- CMD ARGS..."""
    sys.exit(api.run_in_image(local_app(ctx), name, command))


@image.command("pack")
@click.argument("name")
@click.option(
    "--boot-url",
    "server_url",
    metavar="URL",
    help="The HTTP URL nodes fetch from, baked into the torrent, e.g. http://10.0.0.1:8080"
    " (default: the one of the last pack)",
)
@click.option("--single-stage", is_flag=True, help="Also the image as one cpio initrd")
@click.option("--force", is_flag=True, help="Rebuild even if the image did not change")
@output_option
@click.pass_obj
def pack(
    ctx: CliContext,
    /,
    name: str,
    server_url: str | None,
    single_stage: bool,
    force: bool,
    output: str,
) -> None:
    """Build the boot artifacts of image NAME (only if it changed since the last pack)."""
    with reporter() as rep:
        arts = artifacts.pack_image(local_app(ctx), name, server_url, single_stage, force, rep)
    data = arts.model_dump(mode="json")
    emit(
        data,
        output,
        ("ARTIFACT", "FORMAT", "SHA256", "SIZE"),
        lambda: [(k, f.format, f.sha256, _size(f.size)) for k, f in arts.named_files()],
    )


@image.command("gc")
@click.pass_obj
def gc(ctx: CliContext, /) -> None:
    """Remove artifacts that no image refers to any more."""
    removed = artifacts.gc_artifacts(local_app(ctx))
    success(f"{len(removed)} unused artifact(s) removed")


COMMANDS = [image]
