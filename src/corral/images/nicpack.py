"""The NIC pack: the initramfs part with the NIC drivers, whole or for one NIC.

The first part of the initramfs carries no NIC driver; `build_initramfs`
writes every driver of `modules.NIC_MODULES` (with their dependencies and the
module index of first part and pack together) as a second compressed cpio, the
full pack. Linux unpacks concatenated archives in turn, so a node boots the
first part followed by a pack. iPXE knows its NIC's PCI vendor and device IDs
and asks for `?pci=VVVV:DDDD`; the server picks the modules whose
`modules.alias` PCI patterns match those IDs, with their dependencies and the
pack's modules that build on them (mlx4_en on mlx4_core, virtio_net on virtio,
a PHY driver on libphy), and writes a small pack of just those (`NicPacks`,
made once per full pack and module set, the newest few kept). The index is the
full pack's: modprobe of a module the node lacks fails as for any absent
driver. IDs that match nothing, or no IDs at all: the full pack.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import zstandard

from corral.images import recent
from corral.images.cpio import TRAILER, header
from corral.images.errors import ImageError
from corral.images.modules import module_name

log = logging.getLogger("corral.nicpack")

# lists the pack's modules, one line; "all" in the full pack (the init prints it)
MARKER = "etc/corral/nics"
PCI_ID = re.compile(r"[0-9a-fA-F]{4}")
MAX_QUERY = 16  # "VVVV:DDDD" is 9
MAX_RAW = 64 << 20  # the full pack's cpio: about 12 MB on Debian 12's kernel
MAX_PACKED = 32 << 20  # and compressed, 2.3 MB: a larger artifact is not one
LEVEL = 19  # as the first part (`initramfs.ZSTD_LEVEL`)
KEEP = 256  # small packs kept on disk (0.1-0.9 MB each): NIC driver sets in use x images
MAX_MEMO = 4096  # (pack, IDs) answers remembered in memory
KEEP_LOADED = 4  # full packs kept read in memory: the images in use


def parse_pci(query: str | None) -> tuple[str, str] | None:
    """("VVVV", "DDDD") upper-case from "vvvv:dddd", or None for anything else.

    iPXE writes each ID as 4 hex digits (`${pci/...}` is hexraw); an iPXE without
    PCI settings, or a NIC that is not on PCI, gives an empty or other value.
    """
    if not query or len(query) > MAX_QUERY:
        return None
    vendor, sep, device = query.partition(":")
    if not sep or not PCI_ID.fullmatch(vendor) or not PCI_ID.fullmatch(device):
        return None
    if vendor.lower() in ("ffff", "0000"):  # no device at that address
        return None
    return vendor.upper(), device.upper()


def pci_aliases(text: str) -> list[tuple[str, str]]:
    """(vendor and device pattern, module) of each PCI alias in a modules.alias.

    The pattern is the alias up to its subvendor field ("pci:v00008086d000010D3"):
    the node's IDs say nothing of the rest. An alias that matches any vendor and
    device (a class match) names no driver for a given NIC, so it is left out.
    """
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias" and words[1].startswith("pci:v"):
            head = words[1].split("sv", 1)[0]
            if head != "pci:v*d*":
                out.append((head, module_name(words[2])))
    return out


def matching(aliases: list[tuple[str, str]], vendor: str, device: str) -> set[str]:
    """The modules with a PCI alias that matches these IDs (upper-case hex)."""
    ids = f"pci:v0000{vendor}d0000{device}"
    return {module for pattern, module in aliases if fnmatch.fnmatchcase(ids, pattern)}


def module_deps(text: str) -> dict[str, tuple[str, list[str]]]:
    """Module name -> (its path under lib/modules/VERSION, the names it depends on)."""
    out = {}
    for line in text.splitlines():
        path, sep, deps = line.partition(":")
        if sep:
            name = module_name(Path(path).name)
            out[name] = (path, [module_name(Path(d).name) for d in deps.split()])
    return out


def choose(
    deps: dict[str, tuple[str, list[str]]], aliases: list[tuple[str, str]], vendor: str, device: str
) -> set[str]:
    """The modules of the pack a NIC with these IDs needs; empty when none drives it.

    The matching drivers with their dependencies, then every module of the pack
    without a PCI alias of its own that builds on one chosen (mlx4_en, virtio_net,
    a PHY driver), with its dependencies, until nothing more comes.
    """
    own = {module for _, module in aliases}
    chosen = closure(deps, matching(aliases, vendor, device) & deps.keys())
    while chosen:
        more = {m for m, (_, d) in deps.items() if m not in chosen | own and set(d) & chosen}
        if not more:
            break
        chosen |= closure(deps, more)
    return chosen


def closure(deps: dict[str, tuple[str, list[str]]], names: set[str]) -> set[str]:
    """`names` and what they depend on, as far as the pack holds it (the rest is built in
    or in the first part)."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in deps and name not in found:
            found.add(name)
            todo += deps[name][1]
    return found


@dataclass(frozen=True)
class Entry:
    """One cpio newc entry as read: name, mode, data (a symlink's target for a link)."""

    name: str
    mode: int
    data: bytes


def read_cpio(raw: bytes) -> list[Entry]:
    """The entries of an uncompressed newc archive, up to its trailer."""
    entries: list[Entry] = []
    at = 0
    while at + 110 <= len(raw):
        if raw[at : at + 6] != b"070701":
            raise ImageError(f"not a cpio newc archive at byte {at}")
        fields = [int(raw[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_end = at + 110 + namesize
        name = raw[at + 110 : name_end - 1].decode()
        start = name_end + (-name_end % 4)
        if name.encode() == TRAILER:
            return entries
        data = raw[start : start + size]
        if len(data) != size:
            raise ImageError(f"cpio entry {name} is cut short")
        entries.append(Entry(name, mode, data))
        at = start + size + (-size % 4)
    raise ImageError("the cpio archive has no trailer")


def write_cpio(entries: list[Entry]) -> bytes:
    """A newc archive of `entries`, root-owned with zero mtimes."""
    out = []
    for ino, e in enumerate(entries, 1):
        out += [header(e.name.encode(), ino, e.mode, len(e.data)), e.data, bytes(-len(e.data) % 4)]
    out.append(header(TRAILER, 0, 0, 0))
    return b"".join(out)


@dataclass(frozen=True)
class FullPack:
    """A full pack as read: its entries, and its modules' dependencies and PCI aliases."""

    entries: list[Entry]
    deps: dict[str, tuple[str, list[str]]]
    aliases: list[tuple[str, str]]

    @classmethod
    def load(cls, path: Path) -> FullPack:
        """Read the full pack at `path` (zstd); ImageError when it is not one."""
        if path.stat().st_size > MAX_PACKED:
            raise ImageError(f"{path.name} is too large for a NIC pack")
        try:
            with path.open("rb") as f:
                reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
                chunks, size = [], 0
                while size <= MAX_RAW and (chunk := reader.read(1 << 20)):
                    chunks.append(chunk)
                    size += len(chunk)
                raw = b"".join(chunks)
        except zstandard.ZstdError as exc:
            raise ImageError(f"{path.name} is not a NIC pack: {exc}") from None
        if len(raw) > MAX_RAW:
            raise ImageError(f"{path.name} unpacks to more than {MAX_RAW} bytes")
        entries = read_cpio(raw)
        by_name = {e.name: e for e in entries}
        marker = by_name.get(MARKER)
        if marker is None or marker.data.strip() != b"all":
            raise ImageError(f"{path.name} is not a full NIC pack")
        index = {Path(e.name).name: e.data.decode(errors="replace") for e in entries}
        deps = module_deps(index.get("modules.dep", ""))
        return cls(entries, deps, pci_aliases(index.get("modules.alias", "")))

    def subset(self, chosen: set[str]) -> bytes:
        """The pack's cpio with only the `chosen` modules (directories and index kept)."""
        paths = {self.deps[m][0] for m in chosen}
        kept = []
        for e in self.entries:
            if e.name == MARKER:
                kept.append(Entry(e.name, e.mode, (" ".join(sorted(chosen)) + "\n").encode()))
            elif ".ko" not in Path(e.name).name or e.name.split("/", 3)[-1] in paths:
                kept.append(e)
        return write_cpio(kept)


class NicPacks:
    """The small packs of one server, made on first use and kept under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.memo: dict[tuple[str, str, str], tuple[Path, list[str]] | None] = {}
        self.refused: dict[str, str] = {}  # artifacts that are no full pack: why
        # full packs as read (about 12 MB each), so IDs not seen before cost a match only
        self.loaded: dict[str, FullPack] = {}

    def pack(self, full: Path, vendor: str, device: str) -> tuple[Path, list[str]] | None:
        """(small pack, its modules) for a NIC with these IDs, or None: serve the full pack.

        `full` is the full pack's artifact (named by its sha256). A pack that cannot be
        written (a full disk, say) is None too: the node still boots, on the full pack.
        The compression runs outside the lock, so one slow pack holds up no other request.
        """
        key = (full.name, vendor, device)
        with self.lock:
            found = self.memo.get(key)
            if key in self.memo and (found is None or recent.touched(found[0])):
                return found
            loaded = self._load(full)
        chosen = choose(loaded.deps, loaded.aliases, vendor, device)
        try:
            found = None if not chosen else (self._write(full.name, loaded, chosen), sorted(chosen))
        except (OSError, ValueError, zstandard.ZstdError) as exc:
            log.warning("NIC pack for %s:%s not written (%s): the full pack instead", vendor,
                        device, exc)  # fmt: skip
            return None
        with self.lock:
            if len(self.memo) >= MAX_MEMO:
                self.memo.clear()
            self.memo[key] = found
        return found

    def _load(self, full: Path) -> FullPack:
        if full.name in self.refused:
            raise ImageError(self.refused[full.name])
        if full.name in self.loaded:  # the most recently used go last: evicted last
            self.loaded[full.name] = self.loaded.pop(full.name)
            return self.loaded[full.name]
        try:
            loaded = FullPack.load(full)
        except ImageError as exc:  # asked again, it is refused without reading it
            if len(self.refused) >= MAX_MEMO:
                self.refused.clear()
            self.refused[full.name] = str(exc)
            raise
        if len(self.loaded) >= KEEP_LOADED:
            del self.loaded[next(iter(self.loaded))]  # the oldest
        self.loaded[full.name] = loaded
        return loaded

    def _write(self, full_name: str, loaded: FullPack, chosen: set[str]) -> Path:
        inputs = f"{full_name} {' '.join(sorted(chosen))}"
        path = self.folder / f"{hashlib.sha256(inputs.encode()).hexdigest()[:32]}.cpio.zst"
        if recent.touched(path):
            return path
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(
            loaded.subset(chosen)
        )
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            tmp.rename(path)
        finally:
            tmp.unlink(missing_ok=True)
        recent.prune(self.folder, "*.cpio.zst", KEEP)
        return path
