"""The overlay archive: same bytes every time, and busybox tar unpacks it as rendered."""

from __future__ import annotations

import io
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import overlay_archive
from corral.overlays.render import OverlayRenderer, RenderedFile, RenderedOverlay
from tests.conftest import need

BUSYBOX = "/bin/busybox"


def test_archive_is_deterministic(inv: Inventory, fixed_paths: Paths) -> None:
    one = overlay_archive(OverlayRenderer(fixed_paths).render(inv, "n1"))
    two = overlay_archive(OverlayRenderer(fixed_paths).render(inv, "n1"))
    assert one == two
    assert one[:2] == b"\x1f\x8b" and one[4:8] == b"\0\0\0\0"  # gzip, no mtime


def test_entries_sorted_root_owned_fixed_mtime(inv: Inventory, fixed_paths: Paths) -> None:
    rendered = OverlayRenderer(fixed_paths).render(inv, "n1")
    with tarfile.open(fileobj=io.BytesIO(overlay_archive(rendered)), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(p.lstrip("/") for p in rendered.files)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "root", 0)
        assert m.isreg()
        assert m.mode == rendered.files["/" + m.name].mode


def test_busybox_tar_extracts_it(inv: Inventory, fixed_paths: Paths, tmp_path: Path) -> None:
    need(Path(BUSYBOX).is_file(), "busybox is not installed (Debian: busybox-static)")
    rendered = OverlayRenderer(fixed_paths).render(inv, "n1")
    archive = tmp_path / "overlay.tar.gz"
    archive.write_bytes(overlay_archive(rendered))
    root = tmp_path / "newroot"
    root.mkdir()
    subprocess.run([BUSYBOX, "tar", "-xzf", str(archive), "-C", str(root)], check=True)
    extracted = {
        "/" + p.relative_to(root).as_posix(): RenderedFile(
            p.read_bytes(), stat.S_IMODE(p.stat().st_mode)
        )
        for p in root.rglob("*")
        if p.is_file()
    }
    assert extracted == rendered.files


def test_busybox_tar_reads_long_paths(tmp_path: Path) -> None:
    need(Path(BUSYBOX).is_file(), "busybox is not installed (Debian: busybox-static)")
    deep = "/" + "/".join(["d" * 40] * 5) + "/file.conf"  # > 100 bytes: ustar prefix field
    rendered = RenderedOverlay("n1", ("x",), {deep: RenderedFile(b"x\n", 0o640)}, {deep: "x"})
    archive = tmp_path / "o.tgz"
    archive.write_bytes(overlay_archive(rendered))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([BUSYBOX, "tar", "-xzf", str(archive), "-C", str(out)], check=True)
    assert (out / deep.lstrip("/")).read_bytes() == b"x\n"
    shutil.rmtree(out)
