"""Raspberry Pi 4 and 5 network boot: pure decisions about what a board asks for.

The EEPROM bootloader (BOOT_ORDER with 2 = network) gets an address by DHCP,
then reads over TFTP `<prefix>/start4.elf`, `<prefix>/config.txt`, ... where
the prefix is, per its `TFTP_PREFIX` setting, the board serial (0, default:
8 lowercase hex digits) or the MAC written with dashes (2:
`dc-a6-32-01-02-03`). If `<prefix>/start4.elf` is not found it retries
without the prefix (the "prefix fallback"); corral answers "not found" at
once for unknown prefixes so that nothing boots by accident.

corral renders each node's `config.txt` and `cmdline.txt`; the firmware
files, device trees and kernel come from the node's image (its own
raspi-firmware package and kernel package), and the initramfs is corral's,
built for arm64 (`corral.images.initramfs`).

Option 97 (client GUID) of the Pi 4 bootloader, per its documentation
(bcm2711 bootloader configuration, `DHCP_OPTION97`): 16 bytes, the fourcc
"RPi4" (0x34695052 little-endian), the board revision (4 bytes), the low 4
bytes of the MAC and the 4-byte serial; older bootloaders send the serial
four times. The integers are read little-endian like the fourcc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RPI4_FOURCC = b"RPi4"
FIRMWARE_DIRS = ("boot/firmware", "usr/lib/raspi-firmware", "boot")
KERNEL_NAMES = ("kernel8.img", "kernel_2712.img")
INITRAMFS_NAME = "corral-initramfs.img"
_SERIAL = re.compile(r"^[0-9a-f]{8}$")
_MAC_DASHES = re.compile(r"^[0-9a-f]{2}(-[0-9a-f]{2}){5}$")
_FILE = re.compile(r"^[A-Za-z0-9._,+-]+(/[A-Za-z0-9._,+-]+)?$")


@dataclass(frozen=True)
class ClientGuid:
    """What a Pi's option 97 says about the board."""

    serial: str  # 8 lowercase hex digits, as in TFTP_PREFIX=0 and /proc/cpuinfo's last digits
    revision: int | None  # board revision code (e.g. 0xc03111: Pi 4 B 4 GB), None in the old form

    @property
    def name(self) -> str:
        """The name corral suggests for an unknown board."""
        return f"rpi-{self.serial}"


def parse_client_guid(option97: bytes) -> ClientGuid | None:
    """The board behind an option 97 value, or None if it is not a Raspberry Pi's."""
    guid = option97[1:] if len(option97) == 17 and option97[0] == 0 else option97
    if len(guid) != 16:
        return None
    words = [guid[i : i + 4] for i in range(0, 16, 4)]
    if words[0] == RPI4_FOURCC:
        serial = int.from_bytes(words[3], "little")
        return ClientGuid(f"{serial:08x}", int.from_bytes(words[1], "little"))
    if words[0] == words[1] == words[2] == words[3]:
        return ClientGuid(f"{int.from_bytes(words[0], 'little'):08x}", None)
    return None


def normalize_serial(serial: str) -> str:
    """A serial as the bootloader writes its prefix: the low 8 hex digits, lowercase."""
    s = serial.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{8,16}", s):
        raise ValueError(f"{serial!r} is not a Raspberry Pi serial (8 to 16 hex digits)")
    return s[-8:]


@dataclass(frozen=True)
class PiRequest:
    """A TFTP path split into the board's prefix and the file it wants."""

    prefix: str  # a serial or a dashed MAC
    file: str

    @property
    def mac(self) -> str | None:
        return self.prefix.replace("-", ":") if _MAC_DASHES.match(self.prefix) else None

    @property
    def serial(self) -> str | None:
        return self.prefix if _SERIAL.match(self.prefix) else None


def split_path(path: str) -> PiRequest | None:
    """`<serial>/<file>` or `<mac-with-dashes>/<file>` (one more level for overlays/)."""
    prefix, _, rest = path.partition("/")
    prefix = prefix.lower()
    if not rest or not (_SERIAL.match(prefix) or _MAC_DASHES.match(prefix)):
        return None
    if not _FILE.match(rest) or ".." in rest.split("/"):
        return None
    return PiRequest(prefix, rest)


def config_txt(
    node: str, kernel_name: str = "kernel8.img", pi5_kernel: str = KERNEL_NAMES[1]
) -> str:
    """The node's config.txt: 64-bit, the image's kernel, corral's initramfs.

    Over TFTP both kernel names are served: the Pi 4 firmware loads
    `kernel8.img`, the Pi 5's `kernel_2712.img`; the `[pi5]` section says so
    explicitly. A boot.img holds the kernel once, so both sections name it.
    """
    return "\n".join(
        [
            f"# corral: node {node}; rendered per boot, edits are lost",
            "arm_64bit=1",
            "enable_uart=1",
            "disable_overscan=1",
            "[pi4]",
            f"kernel={kernel_name}",
            "[pi5]",
            f"kernel={pi5_kernel}",
            "[all]",
            f"initramfs {INITRAMFS_NAME} followkernel",
            "",
        ]
    )


def cmdline_txt(kernel_args: tuple[str, ...]) -> str:
    """One line, as the firmware reads it (it stops at the first newline)."""
    args = [a for a in kernel_args if not a.startswith("initrd=")]
    return " ".join(["console=serial0,115200", "console=tty1", *args]) + "\n"


def firmware_candidates(file: str, kernel_version: str) -> list[str]:
    """Where in the image tree a firmware file may be (first found wins)."""
    places = [f"{d}/{file}" for d in FIRMWARE_DIRS]
    if file.endswith(".dtb") or file.startswith("overlays/"):
        places += [f"{d}/{file}" for d in _kernel_dtb_dirs(kernel_version)]
    return places


def firmware_dirs(kernel_version: str) -> list[str]:
    """Every folder of the image tree that firmware files or device trees come from."""
    return [*FIRMWARE_DIRS, *_kernel_dtb_dirs(kernel_version)]


def _kernel_dtb_dirs(kernel_version: str) -> list[str]:
    return [
        f"usr/lib/linux-image-{kernel_version}/broadcom",
        f"usr/lib/linux-image-{kernel_version}",
    ]


# HTTP boot (mode 7): a FAT image of the boot files and its signature, per board
HTTP_DIR = "boot/rpi"
BOOT_IMG, BOOT_SIG = "boot.img", "boot.sig"
_BOOT_IMG_FIRMWARE = re.compile(r"^(start4\.elf|fixup4\.dat|bcm271[12]-rpi-[0-9a-z-]+\.dtb)$")


def in_boot_img(firmware_file: str) -> bool:
    """Whether a firmware file goes into a boot.img: what a Pi 4 or 5 loads with corral's
    config.txt (start4.elf and fixup4.dat, the BCM2711/2712 device trees); not the
    other start*.elf variants, the older boards' files, nor overlays (config.txt loads none)."""
    return _BOOT_IMG_FIRMWARE.match(firmware_file) is not None


def boot_img_texts(node: str, kernel_args: tuple[str, ...]) -> dict[str, str]:
    """The rendered files of a node's boot.img: one kernel name for Pi 4 and Pi 5."""
    return {
        "config.txt": config_txt(node, KERNEL_NAMES[0], pi5_kernel=KERNEL_NAMES[0]),
        "cmdline.txt": cmdline_txt(kernel_args),
    }


# BOOT_ORDER digits are read right to left: 2 = network (TFTP), 7 = HTTP, 1 = SD card,
# f = start over. Network first, then the SD card, so a card can still rescue a board.
BOOT_ORDER_TFTP = "0xf12"
BOOT_ORDER_HTTP = "0xf17"


@dataclass(frozen=True)
class EepromTarget:
    """Where a board should boot from: this server's address and ports."""

    server_ip: str
    http_port: int


def http_path(prefix: str) -> str:
    """The HTTP_PATH of a board: corral serves `<path>/boot.img` and `<path>/boot.sig` there."""
    return f"{HTTP_DIR}/{prefix}"


def eeprom_config(serial: str | None, target: EepromTarget, http: bool) -> str:
    """The `rpi-eeprom-config` settings for one board (TFTP, or HTTP boot mode 7).

    HTTP_HOST set means plain HTTP to that host (the bootloader's documentation),
    so HTTP_PORT is corral's plain HTTP port; the files there are signed instead.
    """
    lines = ["[all]"]
    if http:
        lines += [
            f"BOOT_ORDER={BOOT_ORDER_HTTP}",
            f"HTTP_HOST={target.server_ip}",
            f"HTTP_PORT={target.http_port}",
            f"HTTP_PATH={http_path(serial or 'SERIAL')}",
        ]
    else:
        lines += [f"BOOT_ORDER={BOOT_ORDER_TFTP}", "TFTP_PREFIX=0", f"TFTP_IP={target.server_ip}"]
    return "\n".join(lines) + "\n"
