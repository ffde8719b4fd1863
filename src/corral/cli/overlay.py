"""`corral overlay list|show|render`: the overlays a node can get, and what it gets.

Overlays are rendered where the keys and the user's overlay trees are, in
CORRAL_HOME on the server, so these commands run there (not with --server).
"""

from __future__ import annotations

from typing import Any

import click

from corral.app import Corral
from corral.cli.context import CliContext
from corral.cli.output import emit, output_option
from corral.inventory.errors import InventoryError
from corral.overlays import sources
from corral.overlays.render import RenderedOverlay, render_node
from corral.overlays.sources import OverlaySource


def _local(ctx: CliContext) -> Corral:
    """Overlays render from CORRAL_HOME (keys, overlay trees): on the server only."""
    return ctx.local()


def _source_data(source: OverlaySource) -> dict[str, Any]:
    meta = sources.meta(source)
    return {
        "name": source.name,
        "origin": source.origin,
        "path": None if source.root is None else str(source.root),
        "members": list(source.members),
        "hides": source.hides,
        "runtime": meta.runtime,
        "reload": meta.reload,
    }


def _note(source: OverlaySource) -> str:
    """What `list` says beside an overlay: what it hides, whether the agent keeps it current."""
    meta = sources.meta(source)
    notes = [f"hides the built-in {source.hides}"] if source.hides else []
    if meta.runtime:
        notes.append(f"runtime (reload: {meta.reload})" if meta.reload else "runtime")
    return "; ".join(notes)


@click.group()
def overlay() -> None:
    """Overlays: files rendered per node (hostname, hosts, network, ssh keys, ...)."""


@overlay.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List built-in and user overlays and overlay sets."""
    found = sources.available(_local(ctx).settings.paths)
    data = [_source_data(s) for s in found]

    def rows() -> list[tuple[Any, ...]]:
        out = []
        for s in found:
            where = " ".join(s.members) if s.origin == "set" else str(s.root)
            out.append((s.name, s.origin, where, _note(s)))
        return out

    emit(data, output, ("NAME", "ORIGIN", "PATH / MEMBERS", "NOTE"), rows)


@overlay.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show overlay NAME: where it comes from and its files."""
    source = sources.find(_local(ctx).settings.paths, name)
    items = sources.files(source)
    data = {
        **_source_data(source),
        "files": [
            {
                "target": f.target,
                "source": f.source,
                "template": f.template,
                "mode": f"{f.mode:04o}",
            }
            for f in items
        ],
    }

    def rows() -> list[tuple[Any, ...]]:
        if source.origin == "set":
            return [(m, "", "", "overlay") for m in source.members]
        return [
            (f.target, f.source, f"{f.mode:04o}", "template" if f.template else "copy")
            for f in items
        ]

    where = source.origin if source.root is None else f"{source.origin}: {source.root}"
    title = f"overlay {source.name} ({where})"
    emit(data, output, ("TARGET", "SOURCE", "MODE", "KIND"), rows, title=title)


def _print_files(rendered: RenderedOverlay) -> None:
    for path, (data, mode, _owner) in rendered.files.items():
        click.echo(f"==> {path} (mode {mode:04o}, overlay {rendered.origins[path]}) <==")
        click.echo(data.decode(errors="replace"), nl=not data.endswith(b"\n"))


def _only(rendered: RenderedOverlay, path: str) -> RenderedOverlay:
    """`rendered` cut down to the one file `path` (leading / optional)."""
    target = "/" + path.lstrip("/")
    if target not in rendered.files:
        made = ", ".join(rendered.files) or "no files"
        raise InventoryError(
            f"overlays {', '.join(rendered.overlays)} for node {rendered.node} "
            f"make no {target} (they make {made})"
        )
    rendered.files = {target: rendered.files[target]}
    return rendered


def _file_data(rendered: RenderedOverlay) -> list[dict[str, str]]:
    return [
        {
            "path": p,
            "mode": f"{f.mode:04o}",
            "overlay": rendered.origins[p],
            "content": f.data.decode(errors="replace"),
        }
        for p, f in rendered.files.items()
    ]


@overlay.command("render")
@click.argument("node")
@click.argument("name", metavar="OVERLAY")
@click.option("--file", "path", metavar="PATH", help="Print only this file, e.g. /etc/hosts")
@click.option(
    "-o", "--output", type=click.Choice(("text", "json", "yaml")), default="text", show_default=True
)
@click.pass_obj
def render(ctx: CliContext, /, node: str, name: str, path: str | None, output: str) -> None:
    """Render OVERLAY (an overlay or a set such as `system`) for NODE and print it.

    With --file, prints that file's content alone, exactly as the node gets it.
    """
    app = _local(ctx)
    rendered = render_node(app, app.settings.paths, node, [name])
    if path is not None:
        rendered = _only(rendered, path)
    if output != "text":
        emit(_file_data(rendered), output, (), list)
    elif path is not None:
        click.echo(next(iter(rendered.files.values())).data, nl=False)
    else:
        _print_files(rendered)


COMMANDS = [overlay]
