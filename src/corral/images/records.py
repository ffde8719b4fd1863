"""The image record kept in the `images` table's spec JSON, and its artifacts.

The HTTP server and the boot scripts find an image's kernel, initramfs,
packed image and torrent through `Artifacts`: each file is named by its
sha256 under `$CORRAL_HOME/artifacts/` (see `artifact_path`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.inventory.types import Name


def artifact_path(home: Path, sha256: str) -> Path:
    """Where the artifact with this sha256 lives: `$CORRAL_HOME/artifacts/<sha256>`."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return home / "artifacts" / sha256


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Kernel(Model):
    """A kernel found in the image: /boot/vmlinuz-VERSION and /lib/modules/VERSION."""

    version: str
    vmlinuz: str = Field(description="Path inside the image, e.g. boot/vmlinuz-6.1.0-56-amd64")
    modules: bool = Field(description="Whether lib/modules/VERSION exists")


class ArtifactFile(Model):
    """One content-addressed file under $CORRAL_HOME/artifacts."""

    sha256: str
    size: int
    format: str = Field(description="e.g. tar+zstd, cpio+gzip, bzImage, torrent")

    def path(self, home: Path) -> Path:
        return artifact_path(home, self.sha256)


class Torrent(ArtifactFile):
    info_hash: str = Field(description="BitTorrent v1 info hash, hex")
    piece_size: int
    tracker: str
    web_seed: str


class Initramfs(ArtifactFile):
    modules: list[str] = Field(default_factory=list, description="Modules included (with deps)")
    missing: list[str] = Field(default_factory=list, description="Asked for, not in the kernel")
    init: Literal["agent", "placeholder"] = "placeholder"
    tools: ArtifactFile | None = Field(
        None,
        description="Its second part (disk tools, dropbear, disk modules): fetched by a node "
        "only for a stateful install, a node script or service mode",
    )
    base: ArtifactFile | None = Field(
        None,
        description="The first part without NIC drivers, which an iPXE boot takes with its "
        "own NIC pack (this record's file is it and the full NIC pack end to end)",
    )
    nics: ArtifactFile | None = Field(
        None, description="The full NIC pack: every NIC driver (corral.images.nicpack)"
    )


class Artifacts(Model):
    """What `pack_image` produced for one state of the image tree."""

    fingerprint: str = Field(description="Tree fingerprint the artifacts were built from")
    digest: str = Field(description="Content digest of the image they were built from")
    server_url: str
    built: float
    kernel_version: str
    image: ArtifactFile
    torrent: Torrent
    kernel: ArtifactFile
    initramfs: Initramfs
    single_stage: ArtifactFile | None = Field(
        None, description="The image itself as a cpio initrd (Warewulf-style), if asked for"
    )
    disk_initrd: ArtifactFile | None = Field(
        None,
        description="The distribution's own initrd for the kernel (boot/initrd.img-VERSION), "
        "packed apart from the image: only a stateful install, which boots from its disk, "
        "fetches it (so it need not run update-initramfs on the node)",
    )
    signature: str | None = Field(
        None,
        description="base64 ed25519 signature of the image's sha256 and the torrent's "
        "info-hash (corral.pki.image_statement), checked by the initramfs",
    )

    def named_files(self) -> list[tuple[str, ArtifactFile]]:
        """(kind, file) for every file: what `corral image show` and `pack` list."""
        out: list[tuple[str, ArtifactFile | None]] = [
            ("image", self.image),
            ("torrent", self.torrent),
            ("kernel", self.kernel),
            ("initramfs", self.initramfs),
            ("initramfs tools", self.initramfs.tools),
            ("initramfs base", self.initramfs.base),
            ("initramfs nics", self.initramfs.nics),
            ("single stage", self.single_stage),
            ("disk initrd", self.disk_initrd),
        ]
        return [(kind, file) for kind, file in out if file is not None]

    def files(self) -> list[ArtifactFile]:
        return [file for _, file in self.named_files()]


class Image(Model):
    """One OS image: a tree under $CORRAL_HOME/images/<name>/rootfs."""

    name: Name
    architecture: str
    digest: str | None = Field(description="sha256 of the canonical tar; None when changed")
    size: int = Field(description="Bytes of file data in the tree")
    files: int = Field(0, description="Entries in the tree")
    kernels: list[Kernel] = Field(default_factory=list)
    source: str
    created: float
    changed: float | None = Field(None, description="When a shell/exec last changed the tree")
    fingerprint: str = Field(description="Cheap tree fingerprint (paths, sizes, mtimes)")
    artifacts: Artifacts | None = None

    @property
    def ram_needed(self) -> int | None:
        """RAM (bytes) a node needs to boot this image stateless; None until packed."""
        if self.artifacts is None:
            return None
        return ram_bytes(self.size, self.files, self.artifacts.image.size)

    @property
    def kernel(self) -> Kernel | None:
        """The kernel the image boots: the newest version that has its modules."""
        usable = [k for k in self.kernels if k.modules]
        return max(usable, key=lambda k: version_key(k.version)) if usable else None


MIB = 1 << 20
# what a stateless node needs besides its root and the archive while it unpacks:
# the kernel and corral's initramfs (the booted system's own memory comes on top:
# about 150 MiB for the `server` preset, see docs/images.md)
SYSTEM_RESERVE = 64 * MIB


def root_bytes(size: int, files: int) -> int:
    """RAM the unpacked tree takes on tmpfs: its data plus half a page per entry."""
    return size + files * 2048


def ram_bytes(size: int, files: int, packed: int) -> int:
    """RAM a node needs to boot the image stateless: root + archive (until unpacked) + system."""
    return root_bytes(size, files) + packed + SYSTEM_RESERVE


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for kernel versions: numbers numerically, words alphabetically."""
    parts = re.findall(r"\d+|[a-z]+", version.lower())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
