"""`pack_image`: content-addressed artifacts, rebuilt only when the image changed."""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess
from pathlib import Path

import libtorrent as lt
import pytest
import zstandard

from corral import pki
from corral.app import Corral
from corral.images import api
from corral.images.archive import TarWriter
from corral.images.artifacts import gc_artifacts, pack_image
from corral.images.errors import ImageError, NoInit, NoKernel
from corral.images.initramfs import AGENT_INIT, PLACEHOLDER_MARKER
from corral.images.pack import pack_tree
from corral.images.records import Artifacts, Image, artifact_path
from tests.images.test_initramfs_size import unpack_into

URL = "http://10.9.0.1:8080"


def artifact_files(app: Corral) -> list[str]:
    return sorted(p.name for p in app.settings.paths.artifacts.iterdir())


@pytest.fixture
def packed(app: Corral, tiny: Image) -> Artifacts:
    return pack_image(app, "tiny", URL)


def test_every_artifact_is_named_by_its_sha256(app: Corral, packed: Artifacts) -> None:
    home = app.settings.paths.home
    for art in packed.files():
        path = artifact_path(home, art.sha256)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == art.sha256
        assert path.stat().st_size == art.size
    assert artifact_files(app) == sorted(f.sha256 for f in packed.files())
    assert api.get_image(app, "tiny").artifacts == packed


def test_torrent_is_private_v1_with_tracker_and_no_web_seed(app: Corral, packed: Artifacts) -> None:
    home = app.settings.paths.home
    data = packed.torrent.path(home).read_bytes()
    info = lt.torrent_info(data)
    assert info.priv()
    assert str(info.info_hash()) == packed.torrent.info_hash
    assert info.total_size() == packed.image.size
    assert info.piece_length() == packed.torrent.piece_size
    raw = lt.bdecode(data)
    assert raw[b"announce"] == f"{URL}/announce".encode()
    assert b"url-list" not in raw  # web seeds are off by default (see images/torrent.py)
    assert packed.torrent.web_seed == ""
    assert b"piece layers" not in raw and b"meta version" not in raw[b"info"]  # v1 only


def test_image_artifact_unpacks_to_the_image(
    app: Corral, packed: Artifacts, tmp_path: Path
) -> None:
    data = packed.image.path(app.settings.paths.home).read_bytes()
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == packed.digest
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=raw, check=True)
    assert (tmp_path / "bin/busybox").read_bytes() == (
        api.rootfs(app, "tiny") / "bin/busybox"
    ).read_bytes()


def test_initramfs_runs_its_programs_and_has_the_image_modules(
    app: Corral, packed: Artifacts, tmp_path: Path, root_only: None
) -> None:
    assert packed.initramfs.format == "cpio+zstd"
    # the first part and the full NIC pack, as GRUB and TFTP boots get them
    unpack_into(tmp_path, packed.initramfs.path(app.settings.paths.home))
    if AGENT_INIT.is_file():
        assert packed.initramfs.init == "agent"
        assert (tmp_path / "init").read_bytes() == AGENT_INIT.read_bytes()
    else:
        assert PLACEHOLDER_MARKER in (tmp_path / "init").read_text()
    version = packed.kernel_version
    moddir = tmp_path / "lib/modules" / version
    assert "virtio_net" in packed.initramfs.modules and "e1000" in packed.initramfs.modules
    assert "virtio_net.ko:" in (moddir / "modules.dep").read_text().replace(
        "kernel/drivers/net/", ""
    )
    for program in (["/usr/bin/zstd", "--version"], ["/usr/bin/openssl", "version"]):
        out = subprocess.run(
            ["chroot", str(tmp_path), *program], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
    # the loader finds all of corral-fetch's libraries (it runs, and says what is wrong)
    fetch = ["chroot", str(tmp_path), "/usr/bin/corral-fetch", "info-hash", "/none.torrent"]
    out = subprocess.run(fetch, capture_output=True, text=True, check=False)
    assert (out.returncode, out.stderr) == (
        1,
        "corral-fetch: cannot read /none.torrent: No such file or directory\n",
    )
    assert not (tmp_path / "usr/bin/aria2c").exists()
    sh = subprocess.run(
        ["chroot", str(tmp_path), "/bin/sh", "-c", "echo ok"], capture_output=True, check=False
    )
    assert sh.stdout == b"ok\n"


def test_unchanged_image_is_not_repacked(app: Corral, packed: Artifacts) -> None:
    again = pack_image(app, "tiny", URL)
    assert again == packed


def test_new_server_url_rebuilds_only_the_torrent(app: Corral, packed: Artifacts) -> None:
    moved = pack_image(app, "tiny", "http://10.9.0.2:80")
    assert moved.image == packed.image and moved.initramfs == packed.initramfs
    assert moved.torrent.tracker == "http://10.9.0.2:80/announce"
    assert moved.torrent.sha256 != packed.torrent.sha256
    assert pack_image(app, "tiny") == moved  # the stored URL is reused


def test_changed_image_is_repacked_and_gc_drops_the_old(app: Corral, packed: Artifacts) -> None:
    (api.rootfs(app, "tiny") / "etc/motd").write_text("changed\n")
    repacked = pack_image(app, "tiny", URL)
    assert repacked.image.sha256 != packed.image.sha256
    assert repacked.digest != packed.digest
    assert repacked.kernel == packed.kernel
    removed = gc_artifacts(app)
    assert packed.image.sha256 in removed and packed.kernel.sha256 not in removed
    assert artifact_files(app) == sorted(f.sha256 for f in repacked.files())


def test_image_without_kernel_imports_but_does_not_pack(app: Corral, tmp_path: Path) -> None:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/etc/hostname").write_text("nokernel\n")
    image = api.import_image(app, str(tmp_path / "root"), "nokernel")
    assert image.kernels == [] and image.kernel is None
    with pytest.raises(NoKernel, match=r"has no kernel to boot.*apt-get install linux-image"):
        pack_image(app, "nokernel", URL)
    assert not app.settings.paths.artifacts.exists() or artifact_files(app) == []


def test_server_url_is_required_and_checked(app: Corral, tiny: Image) -> None:
    with pytest.raises(ImageError, match="no server URL"):
        pack_image(app, "tiny")
    with pytest.raises(ImageError, match="must start with http"):
        pack_image(app, "tiny", "10.0.0.1:8080")


def test_full_disk_while_packing_leaves_no_artifact(
    app: Corral, tiny: Image, tmpfs: object
) -> None:
    assert callable(tmpfs)
    tmpfs(app.settings.paths.artifacts, "6m")
    with pytest.raises(ImageError, match="No space left on device"):
        pack_image(app, "tiny", URL)
    assert artifact_files(app) == []
    assert api.get_image(app, "tiny").artifacts is None


@pytest.mark.slow
def test_single_stage_initrd(app: Corral, tiny: Image, tmp_path: Path) -> None:
    arts = pack_image(app, "tiny", URL, with_single_stage=True)
    assert arts.single_stage is not None
    data = arts.single_stage.path(app.settings.paths.home).read_bytes()
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=tmp_path, check=True)
    assert (tmp_path / "bin/busybox").is_file()


def test_the_images_own_initrd_is_packed_apart_for_stateful_installs(
    app: Corral, tiny: Image, tmp_path: Path
) -> None:
    assert tiny.kernel is not None
    boot = api.rootfs(app, "tiny") / "boot"
    own = boot / f"initrd.img-{tiny.kernel.version}"
    own.write_bytes(b"the distribution's initrd\n" * 1000)
    (boot / "initrd.img-0.0-other").write_text("another kernel's\n")
    arts = pack_image(app, "tiny", URL)
    assert arts.disk_initrd is not None and arts.disk_initrd in arts.files()
    assert arts.disk_initrd.path(app.settings.paths.home).read_bytes() == own.read_bytes()
    data = arts.image.path(app.settings.paths.home).read_bytes()
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=raw, check=True)
    assert not (tmp_path / own.relative_to(api.rootfs(app, "tiny"))).exists()  # not in RAM
    assert (tmp_path / "boot/initrd.img-0.0-other").is_file()  # only the packed kernel's
    own.unlink()
    assert pack_image(app, "tiny", URL).disk_initrd is None


def test_web_seed_when_asked_for(app: Corral, packed: Artifacts) -> None:
    from corral.images.torrent import make_torrent

    path = packed.image.path(app.settings.paths.home)
    made = make_torrent(path, "x.tar.zst", packed.image.sha256, URL, web_seed=True)
    raw = lt.bdecode(made.data)
    assert raw[b"url-list"] == f"{URL}/artifacts/{packed.image.sha256}".encode()


def test_image_without_init_is_refused_naming_the_package(app: Corral, tiny: Image) -> None:
    (api.rootfs(app, "tiny") / "sbin/init").unlink()
    with pytest.raises(NoInit, match=r"^image 'tiny' has no init .*add systemd-sysv") as caught:
        pack_image(app, "tiny", URL)
    assert "\n" not in str(caught.value)


def test_pack_signs_the_image_and_the_initramfs_checks_it_with_its_own_openssl(
    app: Corral, packed: Artifacts, tmp_path: Path, root_only: None
) -> None:
    home = app.settings.paths.home
    initrd = tmp_path / "initrd"
    initrd.mkdir()
    raw = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(packed.initramfs.path(home).read_bytes())
    )
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=initrd, check=True)
    # the initramfs carries the public halves, and they are this server's
    assert (initrd / "etc/corral/signing.pub").read_bytes() == (
        home / "pki" / "signing.pub"
    ).read_bytes()
    assert (initrd / "etc/corral/ca.pem").read_bytes() == (home / "pki" / "ca.pem").read_bytes()
    assert not list(initrd.rglob("*.key"))  # no private key in what is served to anyone
    # the info-hash as BitTorrent computes it from the torrent file served
    info_hash = str(lt.torrent_info(packed.torrent.path(home).read_bytes()).info_hash())
    assert packed.signature

    def check(sha256: str, btih: str) -> int:
        (initrd / "statement").write_text(f"corral-image-v1 sha256={sha256} btih={btih}\n")
        (initrd / "sig").write_bytes(base64.b64decode(packed.signature or ""))
        argv = ["/usr/bin/openssl", "pkeyutl", "-verify", "-pubin", "-rawin"]
        argv += ["-inkey", "/etc/corral/signing.pub", "-in", "/statement", "-sigfile", "/sig"]
        done = subprocess.run(["chroot", str(initrd), *argv], capture_output=True, check=False)
        return done.returncode

    assert check(packed.image.sha256, info_hash) == 0
    assert check(hashlib.sha256(b"another image").hexdigest(), info_hash) != 0
    assert check(packed.image.sha256, "0" * 40) != 0


def test_a_new_torrent_for_a_new_server_url_is_covered_by_the_signature(
    app: Corral, packed: Artifacts
) -> None:
    moved = pack_image(app, "tiny", "http://10.9.0.2:80")
    assert moved.torrent.sha256 != packed.torrent.sha256 and moved.signature
    public = (app.settings.paths.pki / "signing.pub").read_bytes()
    signature = base64.b64decode(moved.signature)
    # the tracker URL lives outside the torrent's info dict: the same info-hash, still signed
    assert pki.verify_image(public, moved.image.sha256, moved.torrent.info_hash, signature)
    assert not pki.verify_image(public, moved.image.sha256, "0" * 40, signature)


def test_content_digest_is_the_sha256_of_the_canonical_tar(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "big").write_bytes(random.Random(1).randbytes(9 << 20))
    (tree / "small").write_text("x")
    tar = tmp_path / "tar"
    with tar.open("wb") as fh:
        TarWriter(fh).add_tree(tree)
    packed = pack_tree(tmp_path / "home", tree)
    assert packed.digest == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    stored = artifact_path(tmp_path / "home", packed.artifact.sha256).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == packed.artifact.sha256
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == tar.read_bytes()
