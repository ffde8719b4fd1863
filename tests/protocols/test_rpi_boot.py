"""Raspberry Pi network boot decisions: option 97, TFTP prefixes, rendered files."""

from __future__ import annotations

import struct

import pytest

from corral.boot import rpi


def test_option_97_of_a_pi4_names_serial_and_revision() -> None:
    guid = (
        b"RPi4"
        + struct.pack("<I", 0xC03111)
        + bytes.fromhex("32010203")
        + struct.pack("<I", 0x1A2B3C4D)
    )
    board = rpi.parse_client_guid(b"\x00" + guid)
    assert board == rpi.ClientGuid("1a2b3c4d", 0xC03111)
    assert board.name == "rpi-1a2b3c4d"


def test_old_option_97_is_the_serial_four_times() -> None:
    guid = struct.pack("<I", 0xDEADBEEF) * 4
    assert rpi.parse_client_guid(guid) == rpi.ClientGuid("deadbeef", None)


@pytest.mark.parametrize("value", [b"", b"\x00" * 5, bytes(range(16)), b"\x01" + bytes(16)])
def test_other_client_guids_are_not_pis(value: bytes) -> None:
    assert rpi.parse_client_guid(value) is None


def test_paths_by_serial_and_by_mac() -> None:
    by_serial = rpi.split_path("1a2b3c4d/start4.elf")
    assert by_serial is not None and by_serial.serial == "1a2b3c4d" and by_serial.mac is None
    by_mac = rpi.split_path("dc-a6-32-01-02-03/overlays/uart0.dtbo")
    assert by_mac is not None and by_mac.mac == "dc:a6:32:01:02:03"
    assert by_mac.file == "overlays/uart0.dtbo"


@pytest.mark.parametrize(
    "path", ["start4.elf", "1a2b3c4d", "1a2b3c4d/a/b/c", "xyz/start4.elf", "1a2b3c4d/.."]
)
def test_other_paths_are_not_pi_files(path: str) -> None:
    assert rpi.split_path(path) is None


def test_serials_are_normalised_to_the_prefix_form() -> None:
    assert rpi.normalize_serial("10000000ABCDEF01") == "abcdef01"
    assert rpi.normalize_serial("0x1a2b3c4d") == "1a2b3c4d"
    with pytest.raises(ValueError, match="not a Raspberry Pi serial"):
        rpi.normalize_serial("pi-42")


def test_cmdline_is_one_line_without_the_ipxe_initrd_name() -> None:
    text = rpi.cmdline_txt(("initrd=initrd0", "quiet", "corral.node=pi1", "corral.token=t"))
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "initrd=" not in text and "corral.node=pi1 corral.token=t" in text


def test_config_loads_the_kernel_for_each_model_and_corral_initramfs() -> None:
    text = rpi.config_txt("pi1")
    assert "[pi4]\nkernel=kernel8.img" in text and "[pi5]\nkernel=kernel_2712.img" in text
    assert f"initramfs {rpi.INITRAMFS_NAME} followkernel" in text and "arm_64bit=1" in text
