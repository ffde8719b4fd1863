"""Installing iPXE binaries into the TFTP root: atomic replace, so a file being served
keeps its old bytes when an upgrade installs a new one."""

from __future__ import annotations

import os
from pathlib import Path

from corral.services.ipxe_files import IPXE_FILES, install_ipxe_binaries


def debian_dir(tmp_path: Path, content: bytes) -> Path:
    """A directory laid out like Debian's /usr/lib/ipxe, holding `content` in each file."""
    d = tmp_path / "usr-lib-ipxe"
    d.mkdir(exist_ok=True)
    for name in IPXE_FILES.values():
        (d / name).write_bytes(content)
    return d


def test_binaries_are_installed_under_their_tftp_names(tmp_path: Path) -> None:
    source = debian_dir(tmp_path, b"ipxe v1")
    root = tmp_path / "tftp"
    assert install_ipxe_binaries(root, [source]) == list(IPXE_FILES)
    assert {p.name for p in root.iterdir()} == set(IPXE_FILES)
    assert all((root / name).read_bytes() == b"ipxe v1" for name in IPXE_FILES)
    assert oct((root / "undionly.kpxe").stat().st_mode & 0o777) == "0o644"


def test_an_upgrade_replaces_the_file_without_touching_one_being_read(tmp_path: Path) -> None:
    root = tmp_path / "tftp"
    install_ipxe_binaries(root, [debian_dir(tmp_path, b"old" * 1000)])
    served = (root / "undionly.kpxe").open("rb")  # a TFTP transfer in progress
    try:
        served.read(10)
        install_ipxe_binaries(root, [debian_dir(tmp_path, b"new!" * 10)])  # same dir, new bytes
        assert served.read() == (b"old" * 1000)[10:]  # copying in place would truncate this
    finally:
        served.close()
    assert (root / "undionly.kpxe").read_bytes() == b"new!" * 10
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_same_content_is_left_alone_and_missing_binaries_are_skipped(tmp_path: Path) -> None:
    source = debian_dir(tmp_path, b"same")
    (source / "snponly.efi").unlink()
    root = tmp_path / "tftp"
    assert install_ipxe_binaries(root, [source]) == ["undionly.kpxe", "ipxe.efi"]
    before = os.stat(root / "ipxe.efi").st_ino
    install_ipxe_binaries(root, [source])
    assert os.stat(root / "ipxe.efi").st_ino == before
    assert install_ipxe_binaries(tmp_path / "empty", [tmp_path / "nowhere"]) == []
