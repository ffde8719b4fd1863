"""The NIC pack for one NIC: IDs checked, drivers matched by modules.alias, a small cpio."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
import zstandard

from corral.images.cpio import CpioWriter
from corral.images.errors import ImageError
from corral.images.nicpack import (
    MARKER,
    MAX_PACKED,
    FullPack,
    NicPacks,
    choose,
    matching,
    module_deps,
    parse_pci,
    pci_aliases,
    read_cpio,
)

VERSION = "6.1.0-57-amd64"
NET = "kernel/drivers/net"
# as depmod writes them (lines from Debian 12's 6.1 kernel)
ALIAS = """\
# Aliases extracted from modules themselves.
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v000015B3d00001017sv*sd*bc*sc*i* mlx5_core
alias pci:v000015B3d00001003sv*sd*bc*sc*i* mlx4_core
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v*d*sv*sd*bc02sc00i* classy
alias mdio:0000000001000011011000100000???? broadcom
alias fs-overlay overlay
"""
DEP = f"""\
{NET}/ethernet/intel/e1000/e1000.ko:
{NET}/ethernet/intel/e1000e/e1000e.ko:
{NET}/ethernet/mellanox/mlx5/core/mlx5_core.ko: {NET}/ethernet/mellanox/mlxfw/mlxfw.ko
{NET}/ethernet/mellanox/mlxfw/mlxfw.ko:
{NET}/ethernet/mellanox/mlx4/mlx4_core.ko:
{NET}/ethernet/mellanox/mlx4/mlx4_en.ko: {NET}/ethernet/mellanox/mlx4/mlx4_core.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
{NET}/virtio_net.ko: kernel/drivers/virtio/virtio.ko {NET}/net_failover.ko
{NET}/net_failover.ko:
{NET}/phy/libphy.ko:
{NET}/phy/broadcom.ko: {NET}/phy/libphy.ko
kernel/fs/overlayfs/overlay.ko:
"""


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("8086:100e", ("8086", "100E")),
        ("15B3:1017", ("15B3", "1017")),
        ("", None),
        (None, None),
        (":", None),  # an iPXE without PCI settings expands both to nothing
        ("80:86:10:0e", None),
        ("8086:100e0", None),
        ("8086", None),
        ("ffff:ffff", None),  # nothing at that bus address
        ("0000:0000", None),
        ("../../etc:passwd", None),
        ("8086:100e&x=1", None),
        ("1" * 4000, None),
    ],
)
def test_only_two_ids_of_four_hex_digits_are_taken(
    query: str | None, ids: tuple[str, str] | None
) -> None:
    assert parse_pci(query) == ids


def test_pci_aliases_match_by_vendor_and_device_and_class_matches_name_no_driver() -> None:
    aliases = pci_aliases(ALIAS)
    assert ("pci:v00001AF4d*", "virtio_pci") in aliases
    assert "classy" not in {m for _, m in aliases}
    assert "virtio_net" not in {m for _, m in aliases}  # a virtio alias, not PCI
    assert matching(aliases, "8086", "100E") == {"e1000"}
    assert matching(aliases, "8086", "10D3") == {"e1000e"}
    assert matching(aliases, "1AF4", "1041") == {"virtio_pci"}
    assert matching(aliases, "8086", "1234") == set()


def test_a_driver_comes_with_what_it_needs_and_what_builds_on_it() -> None:
    deps, aliases = module_deps(DEP), pci_aliases(ALIAS)
    assert choose(deps, aliases, "15B3", "1017") == {"mlx5_core", "mlxfw"}
    assert choose(deps, aliases, "15B3", "1003") == {"mlx4_core", "mlx4_en"}
    assert choose(deps, aliases, "1AF4", "1000") == {
        "virtio_pci", "virtio", "virtio_net", "net_failover",
    }  # fmt: skip
    assert choose(deps, aliases, "8086", "100E") == {"e1000"}
    assert choose(deps, aliases, "1234", "5678") == set()


def full_pack(home: Path) -> Path:
    """A full pack as `initramfs.split_nics` lays it out, with dummy module bodies."""
    stage = home / "stage"
    moddir = stage / "lib/modules" / VERSION
    for line in DEP.splitlines():
        path = moddir / line.split(":")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(path.name.encode() * 100)
    (moddir / "kernel/fs/overlayfs/overlay.ko").unlink()  # in the first part
    (moddir / "modules.dep").write_text(DEP)
    (moddir / "modules.alias").write_text(ALIAS)
    (stage / MARKER).parent.mkdir(parents=True)
    (stage / MARKER).write_text("all\n")
    buf = io.BytesIO()
    writer = CpioWriter(buf, mtime=0)
    writer.add_tree(stage)
    writer.close()
    out = home / "full.cpio.zst"
    out.write_bytes(zstandard.ZstdCompressor(level=3).compress(buf.getvalue()))
    return out


def unpack(path: Path) -> dict[str, bytes]:
    with path.open("rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    return {e.name: e.data for e in read_cpio(raw)}


def test_a_small_pack_holds_the_nics_driver_and_the_whole_index(tmp_path: Path) -> None:
    full = full_pack(tmp_path)
    packs = NicPacks(tmp_path / "packs")
    found = packs.pack(full, "8086", "100E")
    assert found is not None
    path, names = found
    assert names == ["e1000"]
    files = unpack(path)
    kos = sorted(Path(n).name for n in files if n.endswith(".ko"))
    assert kos == ["e1000.ko"]
    assert files[MARKER] == b"e1000\n"
    assert files[f"lib/modules/{VERSION}/modules.alias"] == ALIAS.encode()
    # the directories come before the file, so the kernel can create it
    names_in_order = list(files)
    e1000 = f"lib/modules/{VERSION}/{NET}/ethernet/intel/e1000/e1000.ko"
    assert names_in_order.index(str(Path(e1000).parent)) < names_in_order.index(e1000)
    # cpio itself unpacks it (the format the kernel reads)
    out = tmp_path / "out"
    out.mkdir()
    raw = zstandard.ZstdDecompressor().decompress(path.read_bytes())
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=out, check=True)
    assert (out / e1000).read_bytes() == b"e1000.ko" * 100
    # made once: the same IDs, and other IDs of the same driver set, give the same file
    assert packs.pack(full, "8086", "100E") == found
    assert packs.pack(full, "1234", "5678") is None  # no driver: the full pack
    # the full pack is read once: other IDs cost a match (and a new pack) only
    full.unlink()
    mlx5 = packs.pack(full, "15B3", "1017")
    assert mlx5 is not None and mlx5[1] == ["mlx5_core", "mlxfw"]


def test_a_file_that_is_not_a_full_nic_pack_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(zstandard.ZstdCompressor().compress(b"070701" + b"0" * 200))
    packs = NicPacks(tmp_path / "packs")
    with pytest.raises(ImageError) as first:
        packs.pack(other, "8086", "100E")
    other.unlink()  # refused again without being read
    with pytest.raises(ImageError) as again:
        packs.pack(other, "1AF4", "1000")
    assert str(again.value) == str(first.value)
    large = tmp_path / "large"
    with large.open("wb") as f:
        f.truncate(MAX_PACKED + 1)
    with pytest.raises(ImageError, match="too large"):
        packs.pack(large, "8086", "100E")
    plain = tmp_path / "plain"
    plain.write_bytes(b"not zstd at all")
    with pytest.raises(ImageError):
        FullPack.load(plain)


def test_a_pack_that_cannot_be_written_is_the_full_pack_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """A full disk or an unwritable folder must not fail the boot: the node gets None
    (the route then serves the full pack), and no half-written file stays."""
    full = full_pack(tmp_path)
    blocked = tmp_path / "packs"
    blocked.write_text("a file where the folder should be")
    assert NicPacks(blocked).pack(full, "8086", "100E") is None
    assert blocked.read_text() == "a file where the folder should be"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.cpio.zst", "packs", "stage"]


def test_a_pack_in_use_is_pruned_last(tmp_path: Path) -> None:
    full = full_pack(tmp_path)
    packs = NicPacks(tmp_path / "packs")
    found = packs.pack(full, "8086", "100E")
    assert found is not None
    os.utime(found[0], (1, 1))  # as if written long ago
    assert packs.pack(full, "8086", "100E") == found  # answered from memory
    assert found[0].stat().st_mtime > 1  # and marked used, so pruning takes others first
    assert found[0].stat().st_mode & 0o777 == 0o600
