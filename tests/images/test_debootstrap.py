"""`corral image build --debootstrap`: the mirror from apt's sources, and a real minbase build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corral.app import Corral
from corral.images import api, presets
from corral.images.artifacts import pack_image
from corral.images.debootstrap import (
    BINFMT,
    check_emulation,
    configured_mirror,
    debootstrap_argv,
    finish_tree,
    mirror_from_sources,
)
from corral.images.errors import ImageError
from corral.images.tiny import kernel_deb
from tests.conftest import need, need_tool

DEB822 = """\
Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
# a comment
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""
ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main
"""


def test_mirror_from_deb822_skips_sources_and_security() -> None:
    assert mirror_from_sources([DEB822], []) == "http://mirror.example/debian"


def test_mirror_from_sources_list_with_options() -> None:
    assert mirror_from_sources([], [ONE_LINE]) == "http://list.example/debian"
    assert mirror_from_sources([], ["# nothing\n"]) is None


def test_configured_mirror_reads_a_tree(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    assert configured_mirror(tmp_path) == "http://mirror.example/debian"


def test_argv() -> None:
    argv = debootstrap_argv("bookworm", Path("/t"), "http://m/debian", ["kmod", "udev"])
    assert argv[0] == "debootstrap" and "--variant=minbase" in argv
    assert "--include=kmod,udev" in argv
    assert argv[-3:] == ["bookworm", "/t", "http://m/debian"]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a real debootstrap: minutes, more beside VM tests
def test_build_minimal_without_kernel_then_add_one_and_pack(
    app: Corral, kernel_cache: Path, root_only: None, capfd: pytest.CaptureFixture[str]
) -> None:
    need_tool("debootstrap")
    # the minimal preset without its kernel: the image has an init but cannot boot yet
    image = api.build_image(app, "deb", "bookworm", preset="minimal", exclude=["linux-image-amd64"])
    assert image.architecture == "amd64" and image.kernel is None
    assert image.source.startswith("debootstrap:bookworm preset=minimal http")
    root = api.rootfs(app, "deb")
    assert (root / "etc/debian_version").read_text().startswith("12")
    # unpack a kernel package into it (keeping the merged-/usr symlinks): now it can boot
    deb = kernel_deb(kernel_cache, "amd64")
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    untar = ["tar", "-x", "-C", str(root), "--keep-directory-symlink"]
    subprocess.run(untar, input=tar.stdout, check=True)
    assert api.run_in_image(app, "deb", ["/usr/bin/uname", "-r"]) == 0
    changed = api.get_image(app, "deb")
    assert changed.kernel is not None and changed.digest is None
    assert capfd.readouterr().out.strip() == changed.kernel.version
    arts = pack_image(app, "deb", "http://127.0.0.1:8080")
    assert arts.kernel_version == changed.kernel.version
    assert api.get_image(app, "deb").digest == arts.digest


def test_server_preset_boots_as_a_server_and_include_exclude_adjust_it() -> None:
    server = presets.packages("server", "amd64")
    for needed in ("systemd-sysv", "udev", "dbus", "openssh-server", "chrony", "python3"):
        assert needed in server
    assert {"linux-image-amd64", "grub2-common", "grub-pc-bin", "grub-efi-amd64-bin"} <= set(server)
    assert "rsync" in server  # corral image grab copies a running node with it
    assert "grub-pc-bin" not in presets.packages("server", "arm64")
    assert "linux-image-arm64" in presets.packages("minimal", "arm64")
    assert "openssh-server" not in presets.packages("minimal", "amd64")
    adjusted = presets.packages("server", "amd64", include=["vim-tiny"], exclude=["chrony"])
    assert "vim-tiny" in adjusted and "chrony" not in adjusted
    with pytest.raises(ImageError, match="unknown preset 'huge': one of minimal, server"):
        presets.packages("huge", "amd64")


def test_finish_tree_drops_caches_and_per_node_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    files = {
        "var/cache/apt/archives/bash_5.2_amd64.deb": b"x" * 1000,
        "boot/initrd.img-6.1.0-1-amd64": b"y" * 500,
        "boot/vmlinuz-6.1.0-1-amd64": b"kernel",
        "etc/ssh/ssh_host_rsa_key": b"secret",
        "etc/ssh/sshd_config": b"Port 22\n",
        "etc/machine-id": b"0123456789abcdef0123456789abcdef\n",
        "etc/resolv.conf": b"nameserver 192.0.2.53\n",
        "var/lib/dbus/machine-id": b"0123456789abcdef0123456789abcdef\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "initrd.img").symlink_to("boot/initrd.img-6.1.0-1-amd64")
    removed = finish_tree(root)
    assert removed >= 1000 + 6
    # the initrd stays, packed apart for stateful installs (artifacts.distribution_initrd)
    assert sorted(p.name for p in (root / "boot").iterdir()) == [
        "initrd.img-6.1.0-1-amd64",
        "vmlinuz-6.1.0-1-amd64",
    ]
    assert not (root / "initrd.img").is_symlink()  # the link goes: nothing reads it
    assert not list((root / "var/cache/apt/archives").iterdir())
    assert [p.name for p in (root / "etc/ssh").iterdir()] == ["sshd_config"]
    assert (root / "etc/machine-id").read_text() == "" == (root / "etc/resolv.conf").read_text()
    assert os.readlink(root / "var/lib/dbus/machine-id") == "/etc/machine-id"


def test_another_architecture_without_binfmt_says_how_to_enable_it(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as missing:
        check_emulation("arm64", binfmt=tmp_path)
    assert "qemu-user-static binfmt-support" in str(missing.value)
    assert "update-binfmts --enable qemu-aarch64" in str(missing.value)
    # an entry registered without F: the interpreter would not be found in the chroot
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\noffset 0\n"
    )
    with pytest.raises(ImageError, match="lacks the F flag"):
        check_emulation("arm64", binfmt=tmp_path)


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("CORRAL_TEST_EMULATED_BUILD") != "1",
    reason="opt-in (CORRAL_TEST_EMULATED_BUILD=1): the emulated second stage takes 20-40 min"
    " on 2 shared cores, beyond CI's budget",
)
def test_arm64_image_builds_on_amd64_in_two_stages_under_emulation(
    app: Corral, root_only: None, capfd: pytest.CaptureFixture[str]
) -> None:
    need_tool("debootstrap", "chroot")
    try:
        check_emulation("arm64")
    except ImageError as exc:
        need(False, f"no arm64 emulation here ({BINFMT}): {exc}")
    # the minimal preset without its kernel: the emulated second stage is the slow part
    image = api.build_image(
        app, "deb64", "bookworm", preset="minimal", exclude=["linux-image-arm64"], arch="arm64"
    )
    assert image.architecture == "arm64"
    root = api.rootfs(app, "deb64")
    assert elf_machine(root / "usr/bin/dpkg") == 0xB7  # AArch64, not the host's programs
    assert (root / "var/lib/dpkg/info/systemd-sysv.list").is_file()  # configured: second stage ran
    capfd.readouterr()
    assert api.run_in_image(app, "deb64", ["/usr/bin/uname", "-m"]) == 0
    assert capfd.readouterr().out.strip() == "aarch64"
