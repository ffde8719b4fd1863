"""TftpRoot: normalisation, escapes, symlinks, special files, dynamic providers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.protocols.tftp import BytesSource, ErrorCode, FileSource, TftpError, TftpRoot, normalize

CLIENT = ("192.0.2.7", 2000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "ipxe").mkdir(parents=True)
    (base / "ipxe" / "undionly.kpxe").write_bytes(b"kpxe")
    (base / "empty").write_bytes(b"")
    (tmp_path / "secret").write_bytes(b"secret")
    (base / "out-link").symlink_to(tmp_path / "secret")
    (base / "in-link").symlink_to(base / "ipxe" / "undionly.kpxe")
    (base / "dir-link").symlink_to(tmp_path)
    os.mkfifo(base / "fifo")
    return base


def read_all(source: FileSource) -> bytes:
    try:
        return source.read(0, source.size)
    finally:
        source.close()


@pytest.mark.parametrize(
    ("requested", "path"),
    [
        ("pxelinux.0", "pxelinux.0"),
        ("/pxelinux.0", "pxelinux.0"),
        ("\\ipxe\\undionly.kpxe", "ipxe/undionly.kpxe"),
        ("ipxe//./undionly.kpxe", "ipxe/undionly.kpxe"),
        ("ipxe/x/../undionly.kpxe", "ipxe/undionly.kpxe"),
    ],
)
def test_normalize(requested: str, path: str) -> None:
    assert normalize(requested) == path


@pytest.mark.parametrize("requested", ["../etc/passwd", "a/../../b", "..\\..\\x", "/.."])
def test_normalize_refuses_escapes(requested: str) -> None:
    with pytest.raises(TftpError) as info:
        normalize(requested)
    assert info.value.code == ErrorCode.ACCESS_VIOLATION


@pytest.mark.parametrize(
    "requested", ["ipxe/undionly.kpxe", "/ipxe/undionly.kpxe", "ipxe\\undionly.kpxe", "in-link"]
)
def test_serves_files_inside_the_root(root: Path, requested: str) -> None:
    assert read_all(TftpRoot(root).open(requested, CLIENT)) == b"kpxe"


def test_serves_the_in_tftpd_style_absolute_path(root: Path) -> None:
    requested = str(root.resolve() / "ipxe" / "undionly.kpxe")
    assert read_all(TftpRoot(root).open(requested, CLIENT)) == b"kpxe"


def test_empty_file(root: Path) -> None:
    assert read_all(TftpRoot(root).open("empty", CLIENT)) == b""


@pytest.mark.parametrize(
    ("requested", "code"),
    [
        ("missing", ErrorCode.FILE_NOT_FOUND),
        ("/etc/passwd", ErrorCode.FILE_NOT_FOUND),  # means <root>/etc/passwd
        ("../secret", ErrorCode.ACCESS_VIOLATION),
        ("out-link", ErrorCode.ACCESS_VIOLATION),
        ("dir-link/secret", ErrorCode.ACCESS_VIOLATION),
        ("fifo", ErrorCode.ACCESS_VIOLATION),
        ("ipxe", ErrorCode.ACCESS_VIOLATION),
        ("", ErrorCode.FILE_NOT_FOUND),
    ],
)
def test_refusals(root: Path, requested: str, code: ErrorCode) -> None:
    with pytest.raises(TftpError) as info:
        TftpRoot(root).open(requested, CLIENT)
    assert info.value.code == code


def test_device_file_is_refused(tmp_path: Path) -> None:
    """A root that is itself /dev: character devices are not regular files."""
    with pytest.raises(TftpError) as info:
        TftpRoot("/dev").open("null", CLIENT)
    assert info.value.code == ErrorCode.ACCESS_VIOLATION


class NodeFiles:
    """A dynamic provider: per-client files under `nodes/`."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, int]]] = []

    def match(self, path: str) -> bool:
        return path.startswith("nodes/")

    def open(self, path: str, client: tuple[str, int]) -> FileSource | None:
        self.seen.append((path, client))
        if path == "nodes/forbidden":
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "not yours")
        if path == "nodes/missing":
            return None
        return BytesSource(f"{path} for {client[0]}".encode())


def test_providers_are_asked_first(root: Path) -> None:
    (root / "nodes").mkdir()
    (root / "nodes" / "cfg").write_bytes(b"from disk")
    provider = NodeFiles()
    tftp = TftpRoot(root, [provider])
    assert read_all(tftp.open("/nodes\\cfg", CLIENT)) == b"nodes/cfg for 192.0.2.7"
    assert provider.seen == [("nodes/cfg", CLIENT)]
    assert read_all(tftp.open("ipxe/undionly.kpxe", CLIENT)) == b"kpxe"
    with pytest.raises(TftpError) as info:
        tftp.open("nodes/missing", CLIENT)
    assert info.value.code == ErrorCode.FILE_NOT_FOUND
    with pytest.raises(TftpError) as info:
        tftp.open("nodes/forbidden", CLIENT)
    assert info.value.code == ErrorCode.ACCESS_VIOLATION
