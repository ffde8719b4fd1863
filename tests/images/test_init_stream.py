"""The init's unpack of corral-fetch's stream (corral.overlap=1) trusts only a whole stream.

`start_unpack` and `finish_unpack` are cut out of `corral/agent/init` as they
are and run by busybox sh with the host's zstd; only `/newroot` is moved under
the test's directory and `mount_root` stubbed (no tmpfs is mounted). The
stream is fed through the FIFO as corral-fetch would write it: whole, or cut
short where a writer that went away would leave it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import zstandard

from corral.images.initramfs import BUSYBOX
from tests.conftest import need_tool
from tests.images.test_init_disk import function

FILES = ("first", "second", "third")


def archive() -> tuple[bytes, bytes]:
    """An image archive as `pack` makes it (tar, one zstd frame with its checksum), and
    its first bytes up to the end of its first member: a cut that busybox tar takes
    for a clean end of archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, name in enumerate(FILES):
            data = bytes([i + 1]) * 5000
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if i == 0:
                first = buf.tell()
    raw = buf.getvalue()
    compressor = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    head = compressor.compress(raw[:first]) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    whole = head + compressor.compress(raw[first:]) + compressor.flush()
    return whole, head


def unpack_stream(tmp_path: Path, stream: bytes) -> tuple[str, Path]:
    need_tool("zstd")
    busybox = next(p for p in BUSYBOX if Path(p).is_file())
    newroot, run = tmp_path / "newroot", tmp_path / "run"
    newroot.mkdir()
    run.mkdir()
    (tmp_path / "stream.zst").write_bytes(stream)
    functions = "".join(function(n) for n in ("start_unpack", "finish_unpack", "last_lines"))
    script = (
        'say() { echo "corral: $*"; }\nmount_root() { :; }\n'
        + functions.replace("/newroot", str(newroot))
        + f"RUN={run} OVERLAP=1 BOOT=stateless UNPACKED=0\n"
        + f'start_unpack\ncat "{tmp_path / "stream.zst"}" > $RUN/stream\n'
        + 'finish_unpack\necho "UNPACKED=$UNPACKED"\n'
    )
    proc = subprocess.run(
        [busybox, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, newroot


def test_a_whole_stream_is_the_unpacked_image(tmp_path: Path) -> None:
    whole, _ = archive()
    out, newroot = unpack_stream(tmp_path, whole)
    assert "UNPACKED=1" in out, out
    assert sorted(p.name for p in newroot.iterdir()) == sorted(FILES)


def test_a_stream_cut_short_at_a_tar_header_is_not_taken_for_the_image(tmp_path: Path) -> None:
    _, head = archive()
    out, newroot = unpack_stream(tmp_path, head)
    assert [p.name for p in newroot.iterdir()] == ["first"]  # busybox tar saw a clean end
    assert "UNPACKED=0" in out, out
    assert "unpacking the stream failed" in out, out
