"""Which boot file a network-booting firmware gets: a pure function.

`select_boot(request, server)` looks at what the client says it is (option 93
client architecture, option 60 vendor class, option 77 user class, option
175) and returns a `BootChoice` for the DHCP policy, or None for clients that
are not network booting (an OS DHCP client, say).

Order of the rules, first match wins:

1. iPXE (user class ``iPXE`` or option 175): its per-node script over HTTP,
   ``http://SERVER:PORT/boot/<mac>.ipxe`` with the MAC written literally.
2. UEFI HTTP boot (vendor class ``HTTPClient...``): a URL as the boot file
   (option 67 and the file field) and option 60 ``HTTPClient`` (UEFI 2.x,
   "HTTP Boot"): x86-64 (arch 16) gets iPXE, ``http://SERVER:PORT/boot/ipxe.efi``;
   arm64 (arch 19) gets a RAM-disk image, ``.../boot/arm64-efi/boot.img``,
   holding GRUB, kernel, initramfs and the node's grub.cfg
   (`corral.services.http.efiboot`).
3. Raspberry Pi bootloader (vendor class ``PXEClient:Arch:00000:UNDI:002001``
   *and* a Raspberry Pi MAC prefix, since x86 BIOS PXE ROMs send the same
   vendor class): option 43 as dnsmasq's ``pxe-service=0,"Raspberry Pi Boot"``
   encodes it, and option 66 naming the TFTP server.
4. PXE by architecture (option 93, else the ``Arch:NNNNN`` of the vendor
   class): iPXE over TFTP (siaddr, option 66, file).

PXE clients also get option 60 ``PXEClient`` (else iPXE waits for a ProxyDHCP
offer) and their option 97 UUID echoed.
"""

from __future__ import annotations

import re

from corral.protocols.dhcp import BootChoice, Message, Opt, OptionValue, ServerIdentity
from corral.protocols.dhcp.options import encode_tlv

# RFC 4578 / IANA processor architecture types.
ARCH_BIOS = 0
ARCH_EFI_BC = 7
ARCH_EFI_X64 = 9
ARCH_EFI_ARM64 = 11
ARCH_HTTP_X64 = 16
ARCH_HTTP_ARM64 = 19

UNDIONLY = "undionly.kpxe"
IPXE_EFI = "ipxe.efi"
# arm64 UEFI has no iPXE in Debian: Debian's signed GRUB network image loads the node's
# grub.cfg from corral's TFTP server (corral.boot.grub)
ARM64_LOADER = "arm64-efi/grubnetaa64.efi"

TFTP_FILES: dict[int, str] = {
    ARCH_BIOS: UNDIONLY,
    ARCH_EFI_BC: IPXE_EFI,
    ARCH_EFI_X64: IPXE_EFI,
    ARCH_EFI_ARM64: ARM64_LOADER,
}
# arm64 HTTP boot needs no loader that fetches (Debian has no arm64 iPXE, and GRUB 2.06
# cannot fetch from a non-80 HTTP port): the firmware downloads one image, a RAM disk
ARM64_HTTP_IMAGE = "arm64-efi/boot.img"
HTTP_FILES: dict[int, str] = {ARCH_HTTP_X64: IPXE_EFI, ARCH_HTTP_ARM64: ARM64_HTTP_IMAGE}

RPI_VENDOR_CLASS = "PXEClient:Arch:00000:UNDI:002001"
# Raspberry Pi Foundation / Raspberry Pi Trading Ltd organisationally unique identifiers.
RPI_OUIS = frozenset({"b8:27:eb", "dc:a6:32", "e4:5f:01", "28:cd:c1", "d8:3a:dd", "2c:cf:67"})
RPI_BOOT_TEXT = b"Raspberry Pi Boot"
# PXE vendor sub-options: 6 discovery control = 3 (no broadcast/multicast discovery),
# 10 menu prompt = (timeout 0, "PXE"), 9 boot menu = (type 0, "Raspberry Pi Boot"), end.
RPI_VENDOR_OPTIONS = (
    encode_tlv(
        (
            (6, b"\x03"),
            (10, b"\x00PXE"),
            (9, b"\x00\x00" + bytes([len(RPI_BOOT_TEXT)]) + RPI_BOOT_TEXT),
        )
    )
    + b"\xff"
)

_ARCH_IN_VENDOR_CLASS = re.compile(r"^(?:PXE|HTTP)Client:Arch:(\d{5})")


def is_ipxe(msg: Message) -> bool:
    user_class = msg.user_class
    return (user_class is not None and user_class.has(b"iPXE")) or Opt.IPXE_ENCAP in msg.options


def client_arch(msg: Message) -> int | None:
    """Option 93's first entry, else the arch written in a PXE vendor class."""
    if msg.client_arch:
        return msg.client_arch[0]
    match = _ARCH_IN_VENDOR_CLASS.match(msg.vendor_class or "")
    return int(match.group(1)) if match else None


def ipxe_script_url(msg: Message, server: ServerIdentity) -> str:
    return f"{server.http_base}/boot/{msg.mac}.ipxe"


def select_boot(msg: Message, server: ServerIdentity) -> BootChoice | None:
    """The boot file and options for this request, or None if it is not booting."""
    vendor = msg.vendor_class or ""
    if is_ipxe(msg):
        url = ipxe_script_url(msg, server)
        return _choice(msg, server, url, {Opt.BOOTFILE: url})
    if vendor.startswith("HTTPClient"):
        return _http_client(msg, server)
    if vendor.startswith(RPI_VENDOR_CLASS) and msg.mac[:8] in RPI_OUIS:
        tftp: dict[int, OptionValue] = {
            Opt.VENDOR_SPECIFIC: RPI_VENDOR_OPTIONS,
            Opt.TFTP_SERVER: str(server.tftp),
        }
        return _choice(msg, server, "", tftp)
    arch = client_arch(msg)
    name = TFTP_FILES.get(arch) if arch is not None else None
    if name is None:
        return None
    if arch == ARCH_EFI_ARM64:
        # a plain DHCP offer with a boot file: EDK2 (AAVMF) takes an offer that says
        # "PXEClient" without a boot menu for BINL and asks port 4011, which nobody answers
        return BootChoice(server.tftp, name, {Opt.TFTP_SERVER: str(server.tftp)})
    return _choice(msg, server, name, {Opt.TFTP_SERVER: str(server.tftp)})


def _http_client(msg: Message, server: ServerIdentity) -> BootChoice | None:
    arch = client_arch(msg)
    name = HTTP_FILES.get(arch if arch is not None else ARCH_HTTP_X64)
    if name is None:
        return None
    url = f"{server.http_base}/boot/{name}"
    return BootChoice(None, url, {Opt.VENDOR_CLASS: "HTTPClient", Opt.BOOTFILE: url})


def _choice(
    msg: Message, server: ServerIdentity, file: str, options: dict[int, OptionValue]
) -> BootChoice:
    if (msg.vendor_class or "").startswith("PXEClient") or is_ipxe(msg):
        options[Opt.VENDOR_CLASS] = "PXEClient"
    uuid = msg.options.get(Opt.CLIENT_UUID)
    if uuid is not None:
        options[Opt.CLIENT_UUID] = uuid
    return BootChoice(server.tftp, file, options)
