"""`corral image build --debootstrap`: the mirror from apt's sources, and a real minbase build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.app import Corral
from corral.images import api
from corral.images.artifacts import pack_image
from corral.images.debootstrap import configured_mirror, debootstrap_argv, mirror_from_sources
from corral.images.tiny import kernel_deb
from tests.conftest import need_tool

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
@pytest.mark.timeout(600)
def test_build_minbase_then_add_a_kernel_and_pack(
    app: Corral, kernel_cache: Path, root_only: None, capfd: pytest.CaptureFixture[str]
) -> None:
    need_tool("debootstrap")
    image = api.build_image(app, "deb", "bookworm")
    assert image.architecture == "amd64" and image.kernel is None
    assert image.source.startswith("debootstrap:bookworm http")
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
