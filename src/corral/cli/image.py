"""`corral image import|build|grab|list|show|rename|delete|shell|exec|pack|gc`.

Image commands act on this machine's $CORRAL_HOME (trees and artifacts are
local files), so they refuse --server.
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
from corral.images import api, artifacts, rsync
from corral.images.errors import ImageError
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
    if ctx.server is not None:
        raise ImageError("image commands work on the server's own files; run them there")
    return ctx.app


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


@image.command("build")
@click.argument("name")
@click.option("--debootstrap", "suite", required=True, help="Debian suite, e.g. bookworm")
@click.option("--include", help="Extra packages, comma separated")
@click.option("--mirror", help="Debian mirror (default: the one in apt's sources)")
@click.pass_obj
def build(
    ctx: CliContext, /, name: str, suite: str, include: str | None, mirror: str | None
) -> None:
    """Build image NAME with debootstrap (variant minbase)."""
    pkgs = [p.strip() for p in (include or "").split(",") if p.strip()]
    with reporter() as rep:
        img = api.build_image(local_app(ctx), name, suite, pkgs, mirror, rep)
    success(f"image {img.name} built: {_size(img.size)}, {img.digest}")


@image.command("grab")
@click.argument("node")
@click.argument("name")
@click.option("--exclude", multiple=True, help="Extra rsync exclude pattern (repeatable)")
@click.option("--no-default-excludes", is_flag=True, help="Drop the default exclude list")
@click.option("--user", default="root", show_default=True)
@click.option("--port", type=int, help="ssh port")
@click.option("--identity", type=click.Path(exists=True, dir_okay=False), help="ssh key file")
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
    """Capture the root filesystem of running NODE (rsync over ssh) as image NAME."""
    from pathlib import Path

    excludes = (() if no_default_excludes else rsync.GRAB_EXCLUDES) + exclude
    ssh = rsync.ssh_command(port, Path(identity) if identity else None)
    with reporter() as rep:
        img = api.grab_image(local_app(ctx), node, name, excludes, ssh, user, rep)
    success(f"image {img.name} grabbed from {node}: {_size(img.size)}")


@image.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List images."""
    images = api.list_images(local_app(ctx))
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
    if img.artifacts:
        rows += [(f"artifact {f.format}", f.sha256) for f in img.artifacts.files()]
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
@click.option("--server", "server_url", help="corral's HTTP URL, e.g. http://10.0.0.1:8080")
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
        ("ARTIFACT", "SHA256", "SIZE"),
        lambda: [(f.format, f.sha256, _size(f.size)) for f in arts.files()],
    )


@image.command("gc")
@click.pass_obj
def gc(ctx: CliContext, /) -> None:
    """Remove artifacts that no image refers to any more."""
    removed = artifacts.gc_artifacts(local_app(ctx))
    success(f"{len(removed)} unused artifact(s) removed")


COMMANDS = [image]
