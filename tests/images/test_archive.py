"""The canonical archive: same tree, same bytes; GNU tar and cpio read what we write."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import zstandard

from corral.images.archive import TarWriter, content_digest
from corral.images.cpio import CpioWriter
from corral.images.pack import pack_tree
from corral.images.tree import fingerprint, kernels, resolve


def make_tree(root: Path) -> Path:
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/hostname").write_text("x\n")
    (root / "etc/ssh/key").write_bytes(os.urandom(3000))
    os.link(root / "etc/hostname", root / "etc/hostname.link")
    (root / "bin").mkdir()
    (root / "bin/sh").symlink_to("busybox")
    (root / "big").write_bytes(b"a" * (3 << 20) + b"tail")
    os.mkfifo(root / "fifo")
    os.setxattr(root / "etc/hostname", "user.corral", b"\xffbinary")
    os.chown(root / "etc/ssh/key", 1234, 5678)
    return root


def tar_bytes(root: Path) -> bytes:
    out = io.BytesIO()
    TarWriter(out).add_tree(root)
    return out.getvalue()


def test_same_tree_gives_same_digest_and_any_change_changes_it(tmp_path: Path) -> None:
    a, b = make_tree(tmp_path / "a"), tmp_path / "b"
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    assert content_digest(a) == content_digest(b)
    before = fingerprint(b)
    assert fingerprint(b) == before
    os.utime(b / "big", (1, 1))
    assert fingerprint(b) != before
    assert content_digest(a) != content_digest(b)


def test_gnu_tar_extracts_owners_links_xattrs(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (tmp_path / "out.tar").write_bytes(tar_bytes(src))
    dest = tmp_path / "dest"
    dest.mkdir()
    subprocess.run(
        ["tar", "-xf", str(tmp_path / "out.tar"), "-C", str(dest), "--xattrs",
         "--xattrs-include=*", "--numeric-owner"],
        check=True,
    )  # fmt: skip
    assert (dest / "etc/hostname").stat().st_ino == (dest / "etc/hostname.link").stat().st_ino
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert os.getxattr(dest / "etc/hostname", "user.corral") == b"\xffbinary"
    st = (dest / "etc/ssh/key").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert (dest / "big").read_bytes() == (src / "big").read_bytes()
    assert content_digest(dest) == content_digest(src)


def test_packed_artifact_is_the_canonical_tar_compressed(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    packed = pack_tree(tmp_path / "home", src)
    path = tmp_path / "home/artifacts" / packed.artifact.sha256
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == packed.artifact.sha256
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == packed.digest == content_digest(src)
    assert [p.name for p in (tmp_path / "home/artifacts").iterdir()] == [packed.artifact.sha256]


def test_cpio_newc_extracts_with_cpio(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    out = io.BytesIO()
    writer = CpioWriter(out)
    writer.add_tree(src)
    writer.close()
    dest = tmp_path / "dest"
    dest.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=out.getvalue(), cwd=dest, check=True)
    assert (dest / "big").read_bytes() == (src / "big").read_bytes()
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert (dest / "etc/ssh/key").stat().st_uid == 1234


def test_kernels_found_by_vmlinuz_and_modules(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(b"k")
    (tmp_path / "boot/vmlinuz-6.1.0-10-amd64").write_bytes(b"k")
    (tmp_path / "usr/lib/modules/6.1.0-10-amd64").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    found = kernels(tmp_path)
    assert [(k.version, k.modules) for k in found] == [
        ("6.1.0-9-amd64", False),
        ("6.1.0-10-amd64", True),
    ]
    assert resolve(tmp_path, "/lib/modules") == tmp_path / "usr/lib/modules"
