"""Import sources, named the way skopeo names transports.

    /path/to/dir                 a directory holding a root filesystem
    /path/to/root.tar[.gz|.zst]  a tarball of one (also .tgz, .tar.xz, .tar.bz2)
    oci-archive:PATH[:TAG]       an OCI image archive
    docker-archive:PATH          a `docker save` archive
    oci:DIR[:TAG]                an OCI image layout directory
    docker://REF                 a registry reference

Container sources are copied by skopeo into a private OCI layout and
unpacked by umoci; the image's layers become the tree. Each `fetch_*` fills
an empty directory and raises SourceError or ToolFailed, leaving cleanup to
the caller (which works in a staging directory).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from corral.images import rsync, tools
from corral.images.errors import SourceError, ToolFailed
from corral.images.progress import QUIET, Reporter

CONTAINER_TRANSPORTS = ("oci-archive:", "docker-archive:", "oci:", "docker://")
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar.xz", ".tar.bz2")
TAR_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ", b"BZh")
_TRANSPORT = re.compile(r"^([a-z][a-z0-9-]*):")
KNOWN = (
    "a directory, a tarball (.tar, .tar.gz, .tar.zst, ...), oci-archive:PATH[:TAG], "
    "docker-archive:PATH, oci:DIR[:TAG] or docker://REF"
)


@dataclass(frozen=True)
class Source:
    kind: str  # "dir", "tarball" or "container"
    ref: str


def parse_source(text: str) -> Source:
    """What kind of source `text` names; SourceError if none, with what would work."""
    if text.startswith(CONTAINER_TRANSPORTS):
        return Source("container", text)
    path = Path(text)
    if path.is_dir():
        return Source("dir", text)
    if path.is_file():
        if text.endswith(TARBALL_SUFFIXES) or _looks_like_tar(path):
            return Source("tarball", text)
        raise SourceError(f"{text}: not a tarball or directory; expected {KNOWN}")
    match = _TRANSPORT.match(text)
    if match and not path.exists():
        raise SourceError(f"unknown source type {match.group(1)!r} in {text!r}; expected {KNOWN}")
    raise SourceError(f"{text}: no such file or directory")


def _looks_like_tar(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(512)
    return head.startswith(TAR_MAGIC) or head[257:262] == b"ustar"


def fetch(source: Source, rootfs: Path, work: Path, reporter: Reporter = QUIET) -> None:
    """Fill the empty directory `rootfs` from `source`; `work` is scratch space."""
    if source.kind == "dir":
        rsync.copy_tree(rsync.rsync_argv(source.ref, rootfs), reporter)
    elif source.kind == "tarball":
        fetch_tarball(Path(source.ref), rootfs, reporter)
    else:
        fetch_container(source.ref, rootfs, work, reporter)


def fetch_tarball(path: Path, rootfs: Path, reporter: Reporter = QUIET) -> None:
    """GNU tar detects the compression itself; owners numeric, xattrs kept."""
    tools.require("tar", "tar")
    reporter.start(f"unpacking {path.name}", None)
    argv = ["tar", "-xf", str(path), "-C", str(rootfs), "--numeric-owner"]
    argv += ["--xattrs", "--xattrs-include=*"]
    try:
        tools.run(argv)
    except ToolFailed as exc:
        raise SourceError(f"{path}: cannot unpack: {exc}") from None


def fetch_container(ref: str, rootfs: Path, work: Path, reporter: Reporter = QUIET) -> None:
    """skopeo copy into an OCI layout, then umoci unpack (rootless unless root)."""
    skopeo = tools.require("skopeo", "skopeo")
    umoci = tools.require("umoci", "umoci")
    layout = f"{work / 'oci'}:corral"
    reporter.start(f"copying {ref}", None)
    try:
        tools.run([skopeo, "copy", "--quiet", ref, f"oci:{layout}"])
    except ToolFailed as exc:
        raise SourceError(f"{ref}: cannot read the image: {exc}") from None
    reporter.start("unpacking layers", None)
    bundle = work / "bundle"
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    tools.run([umoci, "unpack", *rootless, "--image", layout, str(bundle)])
    rootfs.rmdir()
    (bundle / "rootfs").rename(rootfs)
