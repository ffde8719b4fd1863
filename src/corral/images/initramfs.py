"""corral's initramfs: the small first stage that fetches and unpacks the image.

Contents: busybox (Debian's busybox-static), corral-fetch (corral's BitTorrent
client on libtorrent, compiled here: `fetchclient`; an initramfs of another
architecture has aria2c from Debian instead), zstd and openssl with the shared
libraries they map (unused ones as stubs: see STUBBED_LIBRARIES), the
cluster CA certificate and the image-signing public key (/etc/corral/ca.pem
and signing.pub), and the init script from
`corral/agent/init`, or a placeholder that prints a marker and powers off when
that script does not exist yet. What only a stateful install, a node script or
service mode needs (disk tools, dropbear, disk and file-system modules) is a
second archive (`split_tools`) that the init fetches then: every node downloads
the first, few the second. The image's own NIC drivers (so drivers always match
the kernel that boots) are a third, the NIC pack (`split_nics`): an iPXE node
boots the first part with a pack of its NIC's driver only (`nicpack`), any
other node with the full pack. Written as cpio newc with root owners and zero
mtimes (the same inputs give the same bytes), then compressed with zstd when
the kernel's config says it can unpack that, gzip otherwise. What each part
costs: `bench/initramfs_size.py`, docs/images.md.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from corral.images import fetchclient, foreign, modules, nicpack, partcache, tools, tree
from corral.images.archive import Sink
from corral.images.cpio import CpioWriter
from corral.images.debootstrap import host_architecture
from corral.images.errors import ImageError
from corral.images.records import ArtifactFile, Initramfs
from corral.images.store import new_artifact, store_bytes
from corral.pki import Pki

AGENT_INIT = Path(__file__).resolve().parent.parent / "agent" / "init"
# openssl: TLS to the server (s_client, checked against the cluster CA) and the
# image signature (pkeyutl -verify); corral-fetch (libtorrent) already needs its
# libssl and libcrypto. The BitTorrent client is installed apart: `install_fetch_client`.
PROGRAMS = {"zstd": "zstd", "openssl": "openssl"}
FETCH_CLIENT = "usr/bin/corral-fetch"
# for an initramfs of another architecture: (package, path inside it, path in the initramfs);
# aria2c, not corral-fetch, which is compiled for the host only (`fetchclient`)
FOREIGN_PROGRAMS = (
    ("busybox-static", "bin/busybox", "bin/busybox"),
    ("aria2", "usr/bin/aria2c", "usr/bin/aria2c"),
    ("zstd", "usr/bin/zstd", "usr/bin/zstd"),
    ("openssl", "usr/bin/openssl", "usr/bin/openssl"),
)
# for stateful installs (fdisk, util-linux, e2fsprogs, xfsprogs) and service mode
# (dropbear-bin, whose dropbearconvert turns the node's OpenSSH host key into dropbear's
# format): taken when the host has them, or, for another architecture, when apt has them.
# program: (path in the initramfs, Debian package, path inside the package)
OPTIONAL_PROGRAMS = {
    "sfdisk": ("usr/sbin/sfdisk", "fdisk", "sbin/sfdisk"),
    "blkid": ("usr/sbin/blkid", "util-linux", "sbin/blkid"),
    "mke2fs": ("usr/sbin/mke2fs", "e2fsprogs", "sbin/mke2fs"),
    "mkfs.xfs": ("usr/sbin/mkfs.xfs", "xfsprogs", "sbin/mkfs.xfs"),
    "dropbear": ("usr/sbin/dropbear", "dropbear-bin", "usr/sbin/dropbear"),
    "dropbearconvert": ("usr/bin/dropbearconvert", "dropbear-bin", "usr/bin/dropbearconvert"),
}
# aria2c's optional features a node never uses (the foreign initramfs' client, see
# FOREIGN_PROGRAMS), and the libraries behind them: Metalink
# and XML-RPC (libxml2, which brings ICU), Firefox cookie files (sqlite3), PKCS #11
# tokens and the system trust store (p11-kit, through gnutls: the node's aria2c speaks
# plain HTTP to the tracker and BitTorrent to peers); and zstd's .xz and .lz4 formats
# (liblzma, liblz4: the init unpacks only .zst). aria2c binds every symbol at start
# (BIND_NOW), and the loader wants every library named, so each is replaced by a stub
# (`stub_library`).
STUBBED_LIBRARIES = (
    "libxml2.so.2", "libsqlite3.so.0", "libp11-kit.so.0", "liblzma.so.5", "liblz4.so.1",
)  # fmt: skip
# one trap instruction per architecture, as the host's assembler writes it
STUB_TRAPS = {"amd64": ".byte 0x0f, 0x0b", "arm64": ".long 0xd4200000"}  # ud2; brk #0
SONAME = re.compile(r"[^/]+\.so(\.\d+)*")
BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")
PLACEHOLDER_MARKER = "CORRAL-INITRAMFS-PLACEHOLDER"
PLACEHOLDER_INIT = f"""#!/bin/sh
# corral placeholder init: replaced by corral/agent/init once that exists.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "{PLACEHOLDER_MARKER} kernel=$(uname -r)"
poweroff -f
"""
# zstd 19, not 9: 0.8 MB less for every node, unpacked as fast (the level only costs
# the pack, once per image: bench/RESULTS.md, "Initramfs size", 2026-12-04)
ZSTD_LEVEL = 19
# in the first part: "SHA256 SIZE FORMAT" of the second (`split_tools`), which the init fetches
TOOLS_POINTER = "etc/corral/tools"
# What the first part of the tiny test image's initramfs and the NIC pack of one
# typical NIC (mlx5, the largest driver) may weigh together (a test holds it): the
# issue 13 target; docs/images.md says what each part costs.
TINY_CEILING = 8_000_000
DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "newroot")


@dataclass(frozen=True)
class KernelSource:
    """The kernel of an image that the initramfs is built for."""

    root: Path  # the image tree
    version: str

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    @property
    def arch(self) -> str:
        """The image's Debian architecture; the host's when the tree does not say."""
        arch = tree.architecture(self.root)
        return host_architecture() if arch == "unknown" else arch

    def config(self) -> str:
        path = self.root / "boot" / f"config-{self.version}"
        return path.read_text(errors="replace") if path.is_file() else ""


def shared_libraries(binary: Path) -> list[Path]:
    """The files the dynamic loader maps for `binary` (none for a static one)."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "not a dynamic executable" in proc.stdout + proc.stderr:
            return []
        raise ImageError(f"ldd {binary} failed: {proc.stderr.strip()}")
    libs = []
    for line in proc.stdout.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0] if words else ""
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def install_binary(stage: Path, source: Path, dest: str) -> None:
    """Copy a program and its libraries into `stage` at the same paths as on the host."""
    target = stage / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    for lib in shared_libraries(source):
        lib_target = stage / str(lib).lstrip("/")
        if not lib_target.exists():
            lib_target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lib, lib_target)


def host_busybox() -> Path:
    busybox = next((Path(p) for p in BUSYBOX if Path(p).is_file()), None)
    if busybox is None:
        raise ImageError("busybox is not installed (Debian package busybox-static)")
    return busybox


def install_busybox(stage: Path) -> None:
    install_binary(stage, host_busybox(), "bin/busybox")
    link_applets(stage)


def link_applets(stage: Path) -> None:
    """A symlink per applet to bin/busybox.

    The list comes from the host's busybox-static: a foreign busybox cannot run
    here, and the same Debian release builds both with the same applets.
    """
    applets = tools.run([str(host_busybox()), "--list-full"]).split()
    for applet in applets:
        link = stage / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(stage / "bin/busybox", link.parent))


def install_optional(stage: Path) -> None:
    """sfdisk, mke2fs (as mkfs.ext4), mkfs.xfs and dropbear where the host has them."""
    for program, (dest, _, _) in OPTIONAL_PROGRAMS.items():
        found = shutil.which(program) or shutil.which(program, path="/sbin:/usr/sbin")
        if found:
            install_binary(stage, Path(found), dest)
    link_mkfs_ext4(stage)


def link_mkfs_ext4(stage: Path) -> None:
    mke2fs = stage / "usr/sbin/mke2fs"
    if mke2fs.exists():
        (stage / "usr/sbin/mkfs.ext4").unlink(missing_ok=True)
        (stage / "usr/sbin/mkfs.ext4").symlink_to("mke2fs")


def libraries_in(stage: Path) -> list[Path]:
    """The shared libraries of the stage (kernel modules are not)."""
    return sorted(
        p
        for p in stage.rglob("*.so*")
        if SONAME.fullmatch(p.name) and not p.is_relative_to(stage / "lib/modules")
    )


def library_closure(stage: Path, program: Path) -> set[Path]:
    """The libraries in `stage` the loader maps for `program` (by DT_NEEDED, read with readelf)."""
    by_soname = {p.name: p for p in libraries_in(stage)}
    found: set[Path] = set()
    todo = [program]
    while todo:
        needed, interp = foreign.elf_needs(todo.pop())
        names = needed + ([Path(interp).name] if interp else [])
        for lib in (by_soname.get(name) for name in names):
            if lib is not None and lib.resolve() not in found:
                found.add(lib.resolve())
                todo.append(lib.resolve())
    return found


def programs_in(stage: Path) -> list[Path]:
    """The ELF programs of the stage (busybox's applet links not counted)."""
    found = []
    for d in ("bin", "sbin", "usr/bin", "usr/sbin"):
        for path in sorted((stage / d).glob("*")):
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(path)
    return found


def imported_symbols(library: Path, users: list[Path]) -> dict[str, str] | None:
    """Symbol -> version ("" for none) that `users` import from `library`.

    None when one of them is not a function: a stub can only stand in for code.
    """
    nm = tools.require("nm", "binutils")
    defined: dict[str, str] = {}
    for line in tools.run([nm, "-D", "--defined-only", str(library)]).splitlines():
        words = line.split()
        if len(words) == 3 and words[1] != "A":
            defined[words[2].split("@")[0]] = words[1]
    wanted: dict[str, str] = {}
    for user in users:
        for line in tools.run([nm, "-D", "--undefined-only", str(user)]).splitlines():
            name, _, version = line.split()[-1].partition("@")
            if name in defined:
                if defined[name] not in ("T", "W", "i"):
                    return None
                wanted[name] = version.lstrip("@")
    return wanted


def stub_library(stage: Path, library: Path) -> bool:
    """Replace `library` by a stub that defines what the stage's programs import from it.

    Each function is one trap instruction, should it ever be called. The stub names
    no libraries itself, so what only the real one needed (libxml2's ICU and its
    30 MB of data) leaves the initramfs too. Built with the host's C compiler; for
    another 64-bit little-endian architecture (arm64) the stub holds that
    architecture's trap and its ELF header names that machine (it has no
    relocations, so nothing else in it depends on the machine). Without a
    compiler, or for another architecture, the real library stays.
    """
    real = library.resolve()
    cc = shutil.which("cc") or shutil.which("gcc")
    machine = {name: number for number, name in tree.ELF_MACHINES.items()}
    arch = tree.architecture(stage)
    if cc is None or arch not in STUB_TRAPS:
        return False
    users = [p for p in programs_in(stage) if real in library_closure(stage, p)]
    users += [lib for lib in libraries_in(stage) if library.name in foreign.elf_needs(lib)[0]]
    symbols = imported_symbols(real, users)
    if not symbols:
        return False
    source = "".join(
        f'__asm__(".text\\n.globl {n}\\n.type {n}, @function\\n{n}: {STUB_TRAPS[arch]}\\n");\n'
        for n in sorted(symbols)
    )
    versions: dict[str, list[str]] = {}
    for name, version in symbols.items():
        if version:
            versions.setdefault(version, []).append(name)
    with tempfile.TemporaryDirectory() as tmp:
        stub, script = Path(tmp) / "stub", Path(tmp) / "versions"
        script.write_text(
            "".join(f"{v} {{ global: {'; '.join(sorted(n))}; }};\n" for v, n in versions.items())
        )
        argv = [cc, "-shared", "-nostdlib", "-fPIC", "-s", "-o", str(stub)]
        argv += [f"-Wl,-soname,{library.name}", "-x", "c", "-"]
        if versions:
            argv.append(f"-Wl,--version-script={script}")
        proc = subprocess.run(argv, input=source, text=True, capture_output=True, check=False)
        if proc.returncode != 0:
            return False
        data = bytearray(stub.read_bytes())
        if data[4:6] != real.read_bytes()[4:6]:  # ELF class and byte order
            return False
        data[18:20] = machine[arch].to_bytes(2, "little")
        real.write_bytes(bytes(data))
    return True


def stub_unused_libraries(stage: Path) -> None:
    """Stub STUBBED_LIBRARIES, then drop every library no program maps any more."""
    for library in libraries_in(stage):
        if library.name in STUBBED_LIBRARIES:
            stub_library(stage, library)
    mapped: set[Path] = set()
    for program in programs_in(stage):
        mapped |= library_closure(stage, program)
    for lib in libraries_in(stage):
        if lib.resolve() not in mapped:
            lib.unlink()


def install_init(stage: Path) -> str:
    init = stage / "init"
    if AGENT_INIT.is_file():
        shutil.copy(AGENT_INIT, init)
        kind = "agent"
    else:
        init.write_text(PLACEHOLDER_INIT)
        kind = "placeholder"
    init.chmod(0o755)
    return kind


def populate(stage: Path, kernel: KernelSource) -> tuple[str, list[str], list[str]]:
    """Fill `stage`; return (init kind, modules included, modules missing)."""
    for d in DIRS:
        (stage / d).mkdir(parents=True, exist_ok=True)
    if kernel.arch == host_architecture():
        install_host_programs(stage)
    else:
        install_foreign_programs(stage, kernel.arch)
    tree = modules.ModuleTree(kernel.modules_dir)
    chosen, missing = tree.closure(modules.BOOT_MODULES)
    modules.copy_modules(tree, chosen, stage, kernel.version)
    (stage / "etc/corral-kernel").write_text(kernel.version + "\n")
    return install_init(stage), sorted(chosen), missing


def split_tools(stage: Path, part: Path, kernel: KernelSource) -> list[str]:
    """Move the stateful and service-mode part of `stage` into `part`; return its module names.

    That part (OPTIONAL_PROGRAMS, the libraries only they map, the disk and file-system
    modules) is a second archive the init fetches when it installs to a disk, runs a
    node script or enters service mode: a stateless boot never downloads it. `part`
    also gets the full module index and ld.so.cache, so unpacking it over the first
    part gives the whole initramfs; the first part is indexed again for what it keeps.
    """
    stage = stage.resolve()
    moddir = stage / "lib" / "modules" / kernel.version
    # a foreign program is a link at its path here to the file at its Debian path
    links = [stage / dest for dest, _, _ in OPTIONAL_PROGRAMS.values()]
    links += [stage / "usr/sbin/mkfs.ext4"]
    programs = {p.resolve() for p in links if p.is_file()}
    core_libs: set[Path] = set()
    for program in programs_in(stage):
        if program.resolve() not in programs:
            core_libs |= library_closure(stage, program)
    moved = [p for p in links if p.is_file()]
    moved += [p for p in programs if p.is_relative_to(stage) and p not in moved]
    moved += [lib for lib in libraries_in(stage) if lib.resolve() not in core_libs]
    tree = modules.ModuleTree(moddir)
    everything = tree.index()
    netboot, _ = tree.closure(modules.NETBOOT_MODULES)
    disk = sorted(set(everything) - set(netboot))
    moved += [everything[name] for name in disk]
    for path in moved:
        target = part / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    for empty in sorted((d for d in moddir.rglob("*") if d.is_dir()), reverse=True):
        if not any(empty.iterdir()):
            empty.rmdir()
    for index in [*moddir.glob("modules.*"), stage / "etc/ld.so.cache"]:
        if index.is_file():
            (part / index.relative_to(stage)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(index, part / index.relative_to(stage))
    reindex(stage, kernel.version)
    return disk


def split_nics(stage: Path, part: Path, kernel: KernelSource) -> list[str]:
    """Move the NIC drivers of `stage` into `part` (the full NIC pack); return their names.

    Each node gets the first part and a NIC pack: this full one, or the few of
    its modules its own NIC needs (`nicpack`). `part` gets the module index of
    both together (so modprobe finds the drivers once the pack is unpacked over
    the first part) and MARKER; the first part is indexed again for what it keeps.
    """
    stage = stage.resolve()
    moddir = stage / "lib" / "modules" / kernel.version
    tree = modules.ModuleTree(moddir)
    everything = tree.index()
    base, _ = tree.closure(modules.BASE_MODULES)
    nics, _ = tree.closure(modules.NIC_MODULES)
    moved = sorted(set(nics) - set(base))
    for name in moved:
        target = part / everything[name].relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        everything[name].rename(target)
    for empty in sorted((d for d in moddir.rglob("*") if d.is_dir()), reverse=True):
        if not any(empty.iterdir()):
            empty.rmdir()
    for index in moddir.glob("modules.*"):
        (part / index.relative_to(stage)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(index, part / index.relative_to(stage))
    (part / nicpack.MARKER).parent.mkdir(parents=True, exist_ok=True)
    (part / nicpack.MARKER).write_text("all\n")
    reindex(stage, kernel.version)
    return moved


def reindex(stage: Path, version: str) -> None:
    """depmod for the modules the stage holds, and ldconfig when it has an ld.so.cache."""
    tools.run([tools.require("depmod", "kmod"), "-b", str(stage), version])
    if (stage / "etc/ld.so.cache").is_file():
        tools.run([tools.require("ldconfig", "libc-bin"), "-r", str(stage)])


def install_host_programs(stage: Path) -> None:
    install_busybox(stage)
    install_binary(stage, fetchclient.build(host_architecture()), FETCH_CLIENT)
    for program, package in PROGRAMS.items():
        install_binary(stage, Path(tools.require(program, package)), f"usr/bin/{program}")
    install_optional(stage)
    stub_unused_libraries(stage)
    libdirs = sorted({str(p.parent.relative_to(stage)) for p in libraries_in(stage)})
    (stage / "etc/ld.so.conf").write_text("".join(f"/{d}\n" for d in libdirs))
    tools.run([tools.require("ldconfig", "libc-bin"), "-r", str(stage)])


def install_foreign_programs(stage: Path, arch: str) -> None:
    """busybox, aria2c, zstd and openssl of `arch` from its Debian packages (see
    `foreign`), and the optional disk and service tools where apt has them.

    No ld.so.cache: the libraries keep their Debian paths, which are the
    loader's built-in search directories.
    """
    sysroot = foreign.Sysroot.fetch(arch, [package for package, _, _ in FOREIGN_PROGRAMS])
    for _, source, dest in FOREIGN_PROGRAMS:
        foreign.install(stage, sysroot, source, dest)
    link_applets(stage)
    install_foreign_optional(stage, arch)
    stub_unused_libraries(stage)


def install_foreign_optional(stage: Path, arch: str) -> None:
    """The optional programs of `arch`; those apt cannot fetch are left out, as on the host."""
    packages = sorted({package for _, package, _ in OPTIONAL_PROGRAMS.values()})
    try:
        sysroot = foreign.Sysroot.fetch(arch, packages, libraries_only=True)
    except ImageError:  # offline, or a foreign archive without them: stateless boots only
        return
    for dest, _, source in OPTIONAL_PROGRAMS.values():
        with contextlib.suppress(ImageError):  # a library outside the closure: leave it out
            foreign.install(stage, sysroot, source, dest)
    link_mkfs_ext4(stage)


def compression(kernel: KernelSource) -> str:
    return "zstd" if "CONFIG_RD_ZSTD=y" in kernel.config() else "gzip"


def concatenated(home: Path, parts: list[ArtifactFile]) -> ArtifactFile:
    """One artifact of `parts` end to end: Linux unpacks each compressed archive in turn.

    What a node gets that cannot ask for its own NIC pack (GRUB, TFTP, Raspberry Pi):
    the first part and the full NIC pack in one file.
    """
    with new_artifact(home) as out:
        for part in parts:
            with part.path(home).open("rb", buffering=0) as fh:
                while block := fh.read(1 << 20):
                    out.write(block)
        return out.commit(home, parts[0].format)


def write_cpio(home: Path, stage: Path, fmt: str, devices: bool = True) -> Initramfs:
    if fmt == "zstd":  # the same part as before costs a hash (images/partcache.py)
        raw = io.BytesIO()
        _cpio(raw, stage, devices)
        data = partcache.compressed(raw.getvalue(), ZSTD_LEVEL)
        return Initramfs(**store_bytes(home, data, "cpio+zstd").model_dump())
    with new_artifact(home) as out:
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
            _cpio(gz, stage, devices)
        art = out.commit(home, f"cpio+{fmt}")
    return Initramfs(**art.model_dump())


def _cpio(sink: Sink, stage: Path, devices: bool) -> None:
    writer = CpioWriter(sink, mtime=0)
    writer.add_tree(stage)
    if devices:
        writer.add_device("dev/console", stat.S_IFCHR | 0o600, 5, 1)
        writer.add_device("dev/null", stat.S_IFCHR | 0o666, 1, 3)
    writer.close()


def install_trust(stage: Path, keys: Pki | None) -> None:
    """The cluster CA certificate and the image-signing public key: what the initramfs trusts.

    Public halves only; the initramfs is served to anyone over plain HTTP.
    """
    if keys is None or not keys.exists():
        return
    etc = stage / "etc/corral"
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy(keys.ca_cert, etc / "ca.pem")
    shutil.copy(keys.signing_pub, etc / "signing.pub")


def build_initramfs(home: Path, kernel: KernelSource, keys: Pki | None = None) -> Initramfs:
    """Build the initramfs for `kernel` into the artifact store, trusting `keys`.

    Four artifacts: the first part every node boots (`base`), the full NIC pack
    (`nics`, `split_nics`), the two end to end (the record itself: what a node
    boots that cannot ask for its own pack), and the stateful/service-mode part
    (`split_tools`), whose sha256 and size the first carries in /etc/corral/tools.
    """
    (home / "artifacts").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home / "artifacts", prefix=".initramfs-") as tmp:
        stage, tools_stage = Path(tmp) / "root", Path(tmp) / "tools"
        nics_stage = Path(tmp) / "nics"
        for d in (stage, tools_stage, nics_stage):
            d.mkdir()
        init_kind, included, missing = populate(stage, kernel)
        split_tools(stage, tools_stage, kernel)
        split_nics(stage, nics_stage, kernel)
        fmt = compression(kernel)
        # no cleanup here: the parts are stored by content and may be another image's
        # too (the NIC pack depends on the kernel only); `pack`'s cleanup removes what
        # no image references
        part, nics = (
            as_file(write_cpio(home, d, fmt, devices=False)) for d in (tools_stage, nics_stage)
        )
        (stage / "etc/corral").mkdir(parents=True, exist_ok=True)
        (stage / TOOLS_POINTER).write_text(f"{part.sha256} {part.size} {part.format}\n")
        install_trust(stage, keys)
        base = as_file(write_cpio(home, stage, fmt))
        whole = concatenated(home, [base, nics])
    return Initramfs(
        **whole.model_dump(),
        modules=included,
        missing=missing,
        init=init_kind,
        tools=part,
        base=base,
        nics=nics,
    )


def as_file(record: Initramfs) -> ArtifactFile:
    return ArtifactFile(sha256=record.sha256, size=record.size, format=record.format)
