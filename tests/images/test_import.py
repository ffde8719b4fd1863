"""`corral image import` from every source type, and what bad input does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.app import Corral
from corral.images import api
from corral.images.errors import ImageError, SourceError
from corral.images.records import Image
from corral.images.sources import parse_source
from corral.inventory.errors import Conflict
from tests.conftest import need_tool


def leftovers(app: Corral) -> list[str]:
    images = app.settings.paths.images
    return sorted(p.name for p in images.iterdir()) if images.exists() else []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("oci-archive:/x.tar:latest", "container"),
        ("docker-archive:/x.tar", "container"),
        ("oci:/layout:v1", "container"),
        ("docker://docker.io/library/debian:bookworm", "container"),
    ],
)
def test_container_transports(text: str, kind: str) -> None:
    assert parse_source(text).kind == kind


def test_plain_paths(tmp_path: Path) -> None:
    (tmp_path / "root.tar.zst").write_bytes(b"")
    (tmp_path / "noext").write_bytes(b"\x1f\x8b\x08")
    (tmp_path / "notes.txt").write_text("hello")
    assert parse_source(str(tmp_path)).kind == "dir"
    assert parse_source(str(tmp_path / "root.tar.zst")).kind == "tarball"
    assert parse_source(str(tmp_path / "noext")).kind == "tarball"
    with pytest.raises(SourceError, match="not a tarball"):
        parse_source(str(tmp_path / "notes.txt"))


def test_unknown_source_type_names_the_known_ones() -> None:
    with pytest.raises(SourceError, match=r"unknown source type 'ftp'.*oci-archive:"):
        parse_source("ftp://example.org/root.tar")
    with pytest.raises(SourceError, match="no such file"):
        parse_source("/nonexistent/root")


def test_import_directory_records_everything(tiny: Image, tiny_tree: Path, app: Corral) -> None:
    assert tiny.architecture == "amd64"
    assert tiny.digest and tiny.digest.startswith("sha256:")
    assert tiny.kernel and tiny.kernel.version.endswith("-amd64")
    assert tiny.kernel.vmlinuz == f"boot/vmlinuz-{tiny.kernel.version}"
    assert tiny.size > 5 << 20
    assert tiny.source == str(tiny_tree)
    assert (api.rootfs(app, "tiny") / "bin/busybox").is_file()
    assert leftovers(app) == ["tiny"]
    assert [i.name for i in api.list_images(app)] == ["tiny"]


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.zst"])
def test_tarball_gives_the_same_digest(
    fmt: str, tiny: Image, tiny_tree: Path, app: Corral, tmp_path: Path
) -> None:
    tarball = tmp_path / f"root.{fmt}"
    flags = {"tar": [], "tar.gz": ["-z"], "tar.zst": ["--zstd"]}[fmt]
    subprocess.run(["tar", "-C", str(tiny_tree), *flags, "-cf", str(tarball), "."], check=True)
    image = api.import_image(app, str(tarball), "fromtar")
    assert image.digest == tiny.digest
    assert image.source == str(tarball)


def test_corrupt_archive_leaves_nothing(app: Corral, tmp_path: Path, tiny_tree: Path) -> None:
    good = tmp_path / "root.tar.gz"
    subprocess.run(["tar", "-C", str(tiny_tree), "-czf", str(good), "."], check=True)
    bad = tmp_path / "bad.tar.gz"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2] + bytes(4096) + data[len(data) // 2 + 4096 :])
    with pytest.raises(SourceError, match=r"bad.tar.gz: cannot unpack"):
        api.import_image(app, str(bad), "broken")
    assert leftovers(app) == []
    assert api.list_images(app) == []


def test_name_taken_or_invalid(tiny: Image, app: Corral, tiny_tree: Path) -> None:
    with pytest.raises(Conflict, match="already exists"):
        api.import_image(app, str(tiny_tree), "tiny")
    with pytest.raises(ImageError, match="DNS-safe"):
        api.import_image(app, str(tiny_tree), "Bad_Name")
    assert leftovers(app) == ["tiny"]


def build_oci_archive(tree: Path, work: Path) -> Path:
    """The recipe from notes/netboot-lab.md: umoci builds, skopeo writes the archive."""
    layout = work / "oci"
    archive = work / "image.tar"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:t"], check=True)
    bundle = work / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:t", str(bundle)], check=True
    )
    subprocess.run(["cp", "-a", f"{tree}/.", str(bundle / "rootfs")], check=True)
    subprocess.run(["umoci", "repack", "--image", f"{layout}:t", str(bundle)], check=True)
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{layout}:t", f"oci-archive:{archive}:t"], check=True
    )
    return archive


def test_import_oci_archive_and_layout(app: Corral, tiny_tree: Path, tmp_path: Path) -> None:
    need_tool("umoci", "skopeo")
    archive = build_oci_archive(tiny_tree, tmp_path)
    image = api.import_image(app, f"oci-archive:{archive}:t", "fromoci")
    assert image.kernel is not None
    assert image.architecture == "amd64"
    assert (api.rootfs(app, "fromoci") / "bin/busybox").is_file()
    layout = api.import_image(app, f"oci:{tmp_path / 'oci'}:t", "fromlayout")
    assert layout.size == image.size
    assert leftovers(app) == ["fromlayout", "fromoci"]


def test_missing_oci_archive_is_a_clear_error(app: Corral, tmp_path: Path) -> None:
    need_tool("skopeo")
    with pytest.raises(SourceError, match="cannot read the image"):
        api.import_image(app, f"oci-archive:{tmp_path / 'none.tar'}", "x")
    assert leftovers(app) == []


def test_full_disk_leaves_nothing(app: Corral, tiny_tree: Path, tmpfs: object) -> None:
    mount = tmpfs
    assert callable(mount)
    mount(app.settings.paths.images, "4m")
    with pytest.raises(ImageError, match="No space left on device"):
        api.import_image(app, str(tiny_tree), "big")
    assert leftovers(app) == []
    assert api.list_images(app) == []
