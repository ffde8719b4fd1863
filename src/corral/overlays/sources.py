"""Where overlays come from: built-ins shipped with corral, and the user's own.

An overlay is a directory tree laid out as the node's root file system. Files
ending `.j2` are Jinja2 templates (the suffix is dropped), all others are
copied. A user overlay in `$CORRAL_HOME/overlays/<name>/` hides the built-in
overlay (or set) of the same name. An overlay set names several overlays; a
node that lists no overlays gets `DEFAULT_OVERLAYS`.

An overlay may say how it behaves on running nodes in `corral-overlay.toml`
at its root (that file is not shipped to the node):

    runtime = true                              # the node agent keeps it current
    reload = "systemctl reload-or-restart ssh"  # run on the node when a file changed

A runtime overlay is written at boot like any other and then re-fetched by
the node agent while the node runs (`corral.overlays.runtime`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from corral.config import Paths
from corral.overlays.errors import OverlayError, OverlayNotFound

BUILTIN_ROOT = Path(__file__).parent / "builtin"
TEMPLATE_SUFFIX = ".j2"
OVERLAY_SETS: dict[str, tuple[str, ...]] = {
    "system": (
        "hostname",
        "hosts",
        "network",
        "ssh",
        "authorized-keys",
        "fstab",
        "machine-id",
        "chrony",
        "agent",
    ),
    "slurm": ("munge", "slurm-config", "users", "mpi"),
    "k3s": ("k3s-config",),
    "nfs": ("nfs-exports",),
}
DEFAULT_OVERLAYS: tuple[str, ...] = ("system",)
META_FILE = "corral-overlay.toml"

Origin = Literal["builtin", "user", "set"]


@dataclass(frozen=True)
class OverlaySource:
    """One overlay: its name, where it comes from, and its directory (none for a set)."""

    name: str
    origin: Origin
    root: Path | None
    members: tuple[str, ...] = ()
    hides: Origin | None = None  # a user overlay hiding a built-in overlay or set


@dataclass(frozen=True)
class OverlayMeta:
    """How an overlay behaves on a running node (from its `corral-overlay.toml`)."""

    runtime: bool = False
    reload: str | None = None


@dataclass(frozen=True)
class SourceFile:
    """One file of an overlay: where it is, where it lands, whether it is a template."""

    source: str  # relative to the overlay root, e.g. etc/hostname.j2
    target: str  # absolute on the node, e.g. /etc/hostname
    template: bool
    mode: int


def user_root(paths: Paths) -> Path:
    return paths.home / "overlays"


def _builtin(name: str) -> OverlaySource | None:
    if name in OVERLAY_SETS:
        return OverlaySource(name, "set", None, OVERLAY_SETS[name])
    root = BUILTIN_ROOT / name
    return OverlaySource(name, "builtin", root) if root.is_dir() else None


def find(paths: Paths, name: str) -> OverlaySource:
    """The overlay or set called `name`: the user's first, then the built-in."""
    builtin = _builtin(name)
    root = user_root(paths) / name
    if "/" not in name and not name.startswith(".") and root.is_dir():
        return OverlaySource(name, "user", root, hides=builtin.origin if builtin else None)
    if builtin is None:
        raise OverlayNotFound(
            f"overlay {name!r} does not exist: neither built in nor in {user_root(paths)}"
        )
    return builtin


def available(paths: Paths) -> list[OverlaySource]:
    """Every overlay and set a node may name, sorted by name."""
    names = set(OVERLAY_SETS)
    names.update(p.name for p in BUILTIN_ROOT.iterdir() if p.is_dir())
    if user_root(paths).is_dir():
        names.update(
            p.name for p in user_root(paths).iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    return [find(paths, n) for n in sorted(names)]


def resolve(paths: Paths, names: Iterable[str]) -> list[OverlaySource]:
    """Overlay directories in order, sets expanded, repeats dropped (first stays)."""
    out: dict[str, OverlaySource] = {}
    _expand(paths, list(names), out, ())
    return list(out.values())


def _expand(
    paths: Paths, names: Sequence[str], out: dict[str, OverlaySource], trail: tuple[str, ...]
) -> None:
    for name in names:
        if name in trail:
            raise OverlayError(f"overlay set {' → '.join((*trail, name))} includes itself")
        source = find(paths, name)
        if source.origin == "set":
            _expand(paths, source.members, out, (*trail, name))
        else:
            out.setdefault(name, source)


def files(source: OverlaySource) -> list[SourceFile]:
    """The overlay's files, sorted by source path; symlinks are refused."""
    if source.root is None:
        return []
    out = []
    for path in sorted(source.root.rglob("*")):
        rel = path.relative_to(source.root).as_posix()
        if path.is_symlink():
            raise OverlayError(f"overlay {source.name}: {rel} is a symlink (not supported)")
        if path.is_dir() or path.name == "__pycache__" or "/__pycache__/" in f"/{rel}/":
            continue
        if rel == META_FILE:
            continue
        template = rel.endswith(TEMPLATE_SUFFIX)
        target = "/" + (rel.removesuffix(TEMPLATE_SUFFIX) if template else rel)
        out.append(SourceFile(rel, target, template, _mode(source, path)))
    return out


def _mode(source: OverlaySource, path: Path) -> int:
    """A user file's own mode; built-ins as git and wheels keep them (0755 or 0644)."""
    mode = path.stat().st_mode & 0o7777
    if source.origin == "builtin":
        return 0o755 if mode & 0o100 else 0o644
    return mode


def meta(source: OverlaySource) -> OverlayMeta:
    """The overlay's `corral-overlay.toml`, or the defaults (not runtime, no reload).

    :raises OverlayError: the file is not TOML, has unknown keys or wrong types.
    """
    path = None if source.root is None else source.root / META_FILE
    if path is None or not path.is_file():
        return OverlayMeta()
    where = f"overlay {source.name}: {META_FILE}"
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OverlayError(f"{where}: {exc}") from None
    unknown = sorted(set(data) - {"runtime", "reload"})
    if unknown:
        raise OverlayError(f"{where}: unknown key(s) {', '.join(unknown)} (known: reload, runtime)")
    runtime, reload = data.get("runtime", False), data.get("reload")
    if not isinstance(runtime, bool):
        raise OverlayError(f"{where}: 'runtime' must be true or false")
    if reload is not None and (not isinstance(reload, str) or not reload.strip()):
        raise OverlayError(f"{where}: 'reload' must be a command line (a non-empty string)")
    return OverlayMeta(runtime=runtime, reload=reload)
