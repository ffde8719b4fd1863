"""A REPLAY of the Raspberry Pi 4 bootloader's network boot (DHCP, then TFTP): not a board.

No emulator here network-boots a Pi 4, so this client sends what the EEPROM
bootloader documents that it sends, and reads what it reads, in its order.
Sources: the Raspberry Pi documentation, "Raspberry Pi bootloader
configuration" (BOOT_ORDER network mode, TFTP_PREFIX 0 = serial / 2 = MAC,
DHCP_OPTION97: fourcc "RPi4", board revision, low 4 MAC bytes, serial) and
"Network booting" (vendor class `PXEClient:Arch:00000:UNDI:002001`, the reply
must carry option 43 "Raspberry Pi Boot"; the bootloader then reads
`<prefix>/start4.elf`, falling back to no prefix, then `config.txt`,
`fixup4.dat`; the firmware reads the device tree, `cmdline.txt`, the kernel
and the initramfs). Transfer options as the bootloader's log shows them:
`blksize 1024` and `tsize`; the first request for start4.elf is a probe that
the bootloader abandons after the first answer. It was not captured from a
board: where it and a real board differ, the board is right.

HTTP boot (BOOT_ORDER digit 7), from "HTTP boot" and the HTTP_HOST /
HTTP_PORT / HTTP_PATH settings of the same configuration page: after DHCP
the bootloader GETs `http://HTTP_HOST:HTTP_PORT/HTTP_PATH/boot.sig`, then
`.../boot.img` (the order its log shows), over plain HTTP since HTTP_HOST is
set; the User-Agent is the one a board sends (`rpiboot/1.0 (...)`, as seen in
a web server's log quoted in rpi-eeprom issue 433). The replay saves both
files beside OUT.json; checking the signature is the test's job, as it is
the bootloader's.

Run inside the client's namespace:
`python -m tests.helpers.rpi_replay [--http HOST:PORT/PATH] IFACE MAC SERIAL OUT.json [FILE...]`.
It writes what it got (DHCP answers, each file's sha256 and text for the
small rendered ones, refusals, HTTP statuses) as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from ipaddress import IPv4Address
from pathlib import Path

from corral.protocols.dhcp import Message, Opt
from corral.protocols.dhcp.message import build, parse

VENDOR_CLASS = "PXEClient:Arch:00000:UNDI:002001"
REVISION = 0x00C03111  # Pi 4 Model B, 4 GB
BLKSIZE = 1024
FILES = (
    "config.txt",
    "start4.elf",
    "fixup4.dat",
    "bcm2711-rpi-4-b.dtb",
    "cmdline.txt",
    "kernel8.img",
    "corral-initramfs.img",
)
TEXT_FILES = ("config.txt", "cmdline.txt")
HTTP_FILES = ("boot.sig", "boot.img")  # in the order the bootloader's log shows
USER_AGENT = "rpiboot/1.0 (c03111; version:replay timestamp:0)"
SO_BINDTODEVICE = 25


def guid(mac: bytes, serial: int) -> bytes:
    """Option 97 as the bootloader sends it: type 0, then the 16-byte GUID."""
    return b"\x00" + b"RPi4" + struct.pack("<I", REVISION) + mac[2:6] + struct.pack("<I", serial)


def dhcp_socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    return sock


def request(mac: bytes, xid: int, kind: int, serial: int, extra: dict[int, object]) -> bytes:
    import uuid

    options: dict[int, object] = {
        Opt.MESSAGE_TYPE: kind,
        Opt.PARAM_REQUEST: (1, 3, 43, 54, 60, 66, 67),
        Opt.VENDOR_CLASS: VENDOR_CLASS,
        Opt.CLIENT_ARCH: (0,),
        Opt.CLIENT_UUID: uuid.UUID(bytes=guid(mac, serial)[1:]),
        **extra,
    }
    msg = Message(xid=xid, flags=0x8000, chaddr=mac, options=options)  # type: ignore[arg-type]
    return build(msg)


def collect(sock: socket.socket, xid: int, kind: int, seconds: float) -> list[Message]:
    """Every reply of `kind` to `xid` within `seconds` (the bootloader waits for a proxy offer)."""
    got: list[Message] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(4096)
        except TimeoutError:
            break
        msg = parse(data)
        if msg.xid == xid and msg.message_type == kind:
            got.append(msg)
    return got


def describe(msg: Message) -> dict[str, object]:
    vendor = msg.options.get(Opt.VENDOR_SPECIFIC)
    return {
        "yiaddr": str(msg.yiaddr),
        "siaddr": str(msg.siaddr),
        "server_id": str(msg.server_id) if msg.server_id else None,
        "vendor_class": msg.vendor_class,
        "option43": vendor.hex() if isinstance(vendor, bytes) else None,
        "option66": msg.str_option(Opt.TFTP_SERVER),
    }


def dhcp(iface: str, mac: bytes, serial: int) -> dict[str, object]:
    sock = dhcp_socket(iface)
    xid = random.getrandbits(32)
    broadcast = ("255.255.255.255", 67)
    sock.sendto(request(mac, xid, 1, serial, {}), broadcast)
    offers = collect(sock, xid, 2, 3.0)
    address = next((o for o in offers if o.yiaddr != IPv4Address(0)), None)
    boot = next((o for o in offers if Opt.VENDOR_SPECIFIC in o.options), None)
    result: dict[str, object] = {"offers": [describe(o) for o in offers]}
    if address is None or boot is None:
        return result
    extra = {Opt.REQUESTED_IP: address.yiaddr, Opt.SERVER_ID: address.server_id}
    sock.sendto(request(mac, xid, 3, serial, extra), broadcast)
    acks = collect(sock, xid, 5, 3.0)
    sock.close()
    if acks:
        result["ip"] = str(acks[0].yiaddr)
        result["tftp"] = boot.str_option(Opt.TFTP_SERVER) or str(boot.siaddr)
    return result


def rrq(name: str) -> bytes:
    opts = [name, "octet", "tsize", "0", "blksize", str(BLKSIZE)]
    return b"\x00\x01" + b"".join(o.encode() + b"\x00" for o in opts)


def tftp_get(server: str, name: str, probe: bool = False) -> dict[str, object]:
    """Read one file as the bootloader does; `probe`: stop after the server's first answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3.0)
    sock.sendto(rrq(name), (server, 69))
    data = bytearray()
    expected = 1
    blksize = 512
    try:
        while True:
            packet, peer = sock.recvfrom(65536)
            opcode = struct.unpack("!H", packet[:2])[0]
            if opcode == 5:
                code = struct.unpack("!H", packet[2:4])[0]
                return {"error": code, "message": packet[4:].rstrip(b"\0").decode()}
            if probe:
                sock.sendto(b"\x00\x05\x00\x00abandoned\x00", peer)
                return {"probe": opcode}
            if opcode == 6:
                words = packet[2:].split(b"\0")
                opts = dict(zip(words[::2], words[1::2], strict=False))
                blksize = int(opts.get(b"blksize", b"512"))
                sock.sendto(b"\x00\x04\x00\x00", peer)
                continue
            block = struct.unpack("!H", packet[2:4])[0]
            if block == expected:
                data += packet[4:]
                expected += 1
            sock.sendto(b"\x00\x04" + packet[2:4], peer)
            if block == expected - 1 and len(packet) - 4 < blksize:
                break
    except TimeoutError:
        return {"error": "timeout"}
    finally:
        sock.close()
    out: dict[str, object] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if name.rsplit("/", 1)[-1] in TEXT_FILES:
        out["text"] = data.decode(errors="replace")
    return out


def http_get(url: str, dest: Path) -> dict[str, object]:
    """One GET as the bootloader sends it; the body saved to `dest`."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            dest.write_bytes(answer.read())
            os.chmod(dest, 0o644)
            return {"status": answer.status, "size": dest.stat().st_size}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "text": exc.read().decode(errors="replace")}


def http_boot(base: str, out: Path) -> dict[str, object]:
    return {name: http_get(f"http://{base}/{name}", out.parent / name) for name in HTTP_FILES}


def main(argv: list[str]) -> int:
    http = None
    if argv[:1] == ["--http"]:
        http, argv = argv[1], argv[2:]
    iface, mac_text, serial_text, out = argv[:4]
    files = argv[4:] or list(FILES)
    mac = bytes.fromhex(mac_text.replace(":", ""))
    serial = int(serial_text, 16)
    result = dhcp(iface, mac, serial)
    if "ip" in result:
        ip = str(result["ip"])
        subprocess.run(["ip", "addr", "add", f"{ip}/24", "dev", iface], check=True)
        if http is not None:
            result["http"] = http_boot(http, Path(out))
            Path(out).write_text(json.dumps(result, indent=1))
            os.chmod(out, 0o644)
            return 0
        server = str(result["tftp"])
        prefix = f"{serial:08x}"
        result["probe"] = tftp_get(server, f"{prefix}/start4.elf", probe=True)
        result["files"] = {f: tftp_get(server, f"{prefix}/{f}") for f in files}
        result["unknown_prefix"] = tftp_get(server, "0badc0de/start4.elf")
    Path(out).write_text(json.dumps(result, indent=1))
    os.chmod(out, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
