"""Rendering one node's overlays: template trees in, a dict of files out.

Templates are Jinja2 in an immutable sandbox (users write them), with
StrictUndefined (a typo is an error, not an empty string) and no autoescape
(the output is config files, not HTML). They see `node` and `cluster` from
`corral.overlays.context`, and `file(path, mode=None)`: everything a template
prints after `{{ file("x") }}` goes to the file x (relative to the template's
own directory, or absolute; the newline right after the call is dropped), so
one template can write one file per interface or per key. A file whose text
is empty or only whitespace is not written: a template skips its file by
printing nothing.

Rendering is on request and per node: the context costs one node's profile
merge plus the cached hosts list; compiled templates are kept per overlay
directory and reloaded when their source changes.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import threading
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Protocol

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from corral.config import Paths
from corral.inventory.errors import NotFound
from corral.inventory.index import Inventory
from corral.overlays import sources
from corral.overlays.adminkey import admin_public_keys
from corral.overlays.cluster import HostsCache, ReportedFacts
from corral.overlays.clustersecrets import ClusterSecrets
from corral.overlays.context import OverlayContext, build_context
from corral.overlays.errors import OverlayError, TemplateFailure
from corral.overlays.sources import DEFAULT_OVERLAYS, OverlaySource, SourceFile
from corral.overlays.sshkeys import HostKeyStore
from corral.pki import Pki

CORRAL_UUID_NAMESPACE = uuid.UUID("6d2a4c1e-3f0b-5c8e-9a71-c0a1a2b3c4d5")


class RenderedFile(NamedTuple):
    """A file's bytes, mode and owner (`user:group` names as on the node; empty: root)."""

    data: bytes
    mode: int
    owner: str = ""


@dataclass
class RenderedOverlay:
    """A node's rendered files by absolute path, and which overlay wrote each."""

    node: str
    overlays: tuple[str, ...]
    files: dict[str, RenderedFile] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


class HasInventory(Protocol):
    """What `render_node` needs of the application: `corral.app.Corral` fits."""

    def read(self) -> Inventory: ...
    def node_facts(self) -> ReportedFacts: ...


class _Outputs:
    """Collects the files a template opens with `file()`; the markers are unguessable."""

    def __init__(self, target: str, mode: int) -> None:
        self.token = "\x00" + secrets.token_hex(8) + ":"
        self.directory = posixpath.dirname(target)
        self.default_mode = mode
        self.opened: list[tuple[str, int, str]] = [(target, mode, "")]

    def file(self, path: str, mode: int | str | None = None, owner: str = "") -> str:
        """Start a new output file; returns the marker that splits the text."""
        self.opened.append((self._target(path), self._mode(mode), _owner(owner)))
        return f"{self.token}{len(self.opened) - 1}\x00"

    def _target(self, path: str) -> str:
        joined = posixpath.normpath(posixpath.join(self.directory, str(path)))
        if ".." in joined.split("/") or joined in ("/", "."):
            raise ValueError(f"file({path!r}) is outside the node's root")
        return joined

    def _mode(self, mode: int | str | None) -> int:
        if mode is None:
            return self.default_mode
        value = int(mode, 8) if isinstance(mode, str) else int(mode)
        if not 0 <= value <= 0o7777:
            raise ValueError(f"file mode {mode!r} is not a permission mode")
        return value

    def split(self, text: str) -> list[tuple[str, int, str, str]]:
        """(target, mode, text) for each output, main file first."""
        parts = text.split(self.token)
        out = [(*self.opened[0], parts[0])]
        for part in parts[1:]:
            index, _, body = part.partition("\x00")
            out.append((*self.opened[int(index)], body.removeprefix("\n")))
        return out


_OWNER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _owner(owner: str) -> str:
    """`user` or `user:group` (names as on the node), checked; `user` alone means `user:user`."""
    if not owner:
        return ""
    user, _, group = str(owner).partition(":")
    group = group or user
    if not (_OWNER_NAME.match(user) and _OWNER_NAME.match(group)):
        raise ValueError(f"file owner {owner!r} is not user:group (POSIX names)")
    return f"{user}:{group}"


def stable_uuid(text: str) -> str:
    """A UUID that is the same at every render of `text` (NetworkManager keyfiles need one)."""
    return str(uuid.uuid5(CORRAL_UUID_NAMESPACE, text))


def make_environment(root: Path) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    env.filters["uuid"] = stable_uuid
    return env


def _location(exc: BaseException, root: Path) -> tuple[str | None, int | None]:
    """The template file and line an error happened in, from Jinja's rewritten traceback."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.name, exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(root):
            found = (path.relative_to(root).as_posix(), frame.lineno)
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, TemplateError):
        return str(exc.message or exc)
    return f"{type(exc).__name__}: {exc}"


class OverlayRenderer:
    """Renders overlays for nodes; keep one per server for its caches."""

    def __init__(self, paths: Paths, keys: HostKeyStore | None = None) -> None:
        self.paths = paths
        self.keys = keys or HostKeyStore(paths.home / "keys", pki=Pki(paths.pki))
        self.hosts = HostsCache()
        self.secrets_root = paths.home / "secrets"
        self._envs: dict[Path, ImmutableSandboxedEnvironment] = {}
        self._lock = threading.Lock()

    def context(
        self, inv: Inventory, node: str, reported: ReportedFacts | None = None
    ) -> OverlayContext:
        if node not in inv.nodes:
            raise NotFound(f"node {node!r} does not exist")
        admins = admin_public_keys(self.paths)
        secrets = ClusterSecrets(self.secrets_root, inv.settings.name)
        return build_context(inv, node, self.keys, self.hosts, reported, admins, secrets)

    def known_hosts(self, inv: Inventory) -> tuple[str, ...]:
        """Every node's host keys as known_hosts lines (the same as the overlays carry)."""
        return self.hosts.get(inv, self.keys).known_hosts()

    def render(
        self,
        inv: Inventory,
        node: str,
        overlays: Sequence[str] | None = None,
        reported: ReportedFacts | None = None,
    ) -> RenderedOverlay:
        """Render `overlays` (default: the node's own, else the default set) for `node`."""
        ctx = self.context(inv, node, reported)
        names = list(overlays) if overlays else self.node_overlays(inv, node)
        chosen = sources.resolve(self.paths, names)
        result = RenderedOverlay(node, tuple(s.name for s in chosen))
        for source in chosen:
            for path, rendered in self.render_overlay(source, ctx).items():
                result.files[path] = rendered
                result.origins[path] = source.name
        return result

    def node_overlays(self, inv: Inventory, node: str) -> list[str]:
        return inv.effective(node).settings.overlays or list(DEFAULT_OVERLAYS)

    def render_overlay(self, source: OverlaySource, ctx: OverlayContext) -> dict[str, RenderedFile]:
        """One overlay's files for the node of `ctx`, sorted by path."""
        out: dict[str, RenderedFile] = {}
        for item in sources.files(source):
            if item.template:
                out.update(self._render_template(source, item, ctx))
            else:
                assert source.root is not None
                out[item.target] = RenderedFile((source.root / item.source).read_bytes(), item.mode)
        return dict(sorted(out.items()))

    def _environment(self, root: Path) -> ImmutableSandboxedEnvironment:
        with self._lock:
            env = self._envs.get(root)
            if env is None:
                env = self._envs[root] = make_environment(root)
            return env

    def _render_template(
        self, source: OverlaySource, item: SourceFile, ctx: OverlayContext
    ) -> dict[str, RenderedFile]:
        assert source.root is not None
        outputs = _Outputs(item.target, item.mode)
        try:
            template = self._environment(source.root).get_template(item.source)
            text = template.render(**ctx.variables(), file=outputs.file)
        except OverlayError:
            raise
        except Exception as exc:
            name, line = _location(exc, source.root)
            raise TemplateFailure(source.name, name or item.source, line, _reason(exc)) from exc
        return {
            target: RenderedFile(body.encode(), mode, owner)
            for target, mode, owner, body in outputs.split(text)
            if body.strip()
        }


@lru_cache(maxsize=8)
def renderer_for(paths: Paths) -> OverlayRenderer:
    """One shared renderer per CORRAL_HOME, so its caches live across requests."""
    return OverlayRenderer(paths)


def render_node(
    app_or_inventory: HasInventory | Inventory,
    paths: Paths,
    node_name: str,
    overlays: Sequence[str] | None = None,
) -> RenderedOverlay:
    """Render `node_name`'s overlays (default: its own list, else the `system` set).

    Given the application, templates also see the facts the agents reported;
    given a bare inventory, only the facts set in it.
    """
    if isinstance(app_or_inventory, Inventory):
        return renderer_for(paths).render(app_or_inventory, node_name, overlays)
    inv, reported = app_or_inventory.read(), app_or_inventory.node_facts()
    return renderer_for(paths).render(inv, node_name, overlays, reported)
