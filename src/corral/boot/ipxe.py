"""iPXE scripts: pure text from decisions already made (no database, no disk).

Downloads retry, because under a boot storm a request may time out: a failed
`kernel` or `initrd` waits a moment and tries again instead of dropping the
machine to a dead prompt. With several servers, a failed download first tries
the same file on the next server (`BootFiles.mirrors`), so the loss of the
server that wrote the script does not stop the boot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RETRY_SECONDS = 3


@dataclass(frozen=True)
class BootFiles:
    """What a node boots: kernel, initrd(s) and the full kernel command line."""

    kernel_url: str
    initrd_urls: tuple[str, ...]
    kernel_args: tuple[str, ...]
    # the same kernel and initrds on the other servers: (kernel URL, initrd URLs) each
    mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _header(comment: str) -> list[str]:
    return ["#!ipxe", f"# {comment}"]


def node_script(name: str, files: BootFiles) -> str:
    """Boot a known node: fetch kernel and initrd with retries, then boot."""
    lines = _header(f"corral: boot node {name}")
    args = " ".join(files.kernel_args)
    kernels = [files.kernel_url, *(kernel for kernel, _ in files.mirrors)]
    lines += [
        f"echo corral: booting {name}",
        ":kernel",
        _either([f"kernel {url} {args}" for url in kernels], "kernel_retry"),
    ]
    for i, url in enumerate(files.initrd_urls):
        urls = [url, *(initrds[i] for _, initrds in files.mirrors if i < len(initrds))]
        lines += [
            f":initrd{i}",
            _either([f"initrd --name initrd{i} {u}" for u in urls], f"initrd{i}_retry"),
        ]
    lines += ["boot || goto kernel_retry", ""]
    lines += [":kernel_retry", f"sleep {RETRY_SECONDS}", "goto kernel"]
    for i in range(len(files.initrd_urls)):
        lines += [f":initrd{i}_retry", f"sleep {RETRY_SECONDS}", f"goto initrd{i}"]
    return "\n".join(lines) + "\n"


def _either(commands: list[str], otherwise: str) -> str:
    """One line: each command in turn until one succeeds, else `goto otherwise`."""
    return " || ".join([*commands, f"goto {otherwise}"])


def wait_script(reason: str, retry_url: str, seconds: int = 10) -> str:
    """Say why this machine cannot boot yet, wait, and ask again."""
    lines = _header(reason)
    lines += [f"echo corral: {reason}", f"sleep {seconds}", f"chain --autofree {retry_url}", ""]
    return "\n".join(lines)


def discovery_menu(mac: str, server_url: str, candidates: Sequence[str]) -> str:
    """An unknown machine picks the node it is (Luna's way), or registers and waits.

    Picking a node asks for an enrollment code: an anonymous console cannot claim a node.
    """
    base = f"{server_url}/boot/{mac}"
    lines = _header(f"corral: unknown machine {mac}")
    lines += [f"menu corral: unknown machine {mac}: which node is this?"]
    lines += ["item --gap -- Unassigned nodes:"]
    lines += [f"item node-{n} {n}" for n in candidates]
    lines += ["item --gap --", "item register Register and wait for an administrator"]
    lines += ["choose --default register --timeout 60000 target && goto ${target}", ""]
    for n in candidates:
        lines += [
            f":node-{n}",
            "echo -n corral: enrollment code (from corral node enroll-code): ",
            "read code",
            f"chain --autofree {base}/adopt/{n}.ipxe?code=${{code:uristring}}",
            "",
        ]
    lines += [":register", f"chain --autofree {base}/register.ipxe", ""]
    return "\n".join(lines)


def local_disk_script(name: str, retry_url: str) -> str:
    """Boot the first local disk: BIOS through INT 13h, UEFI by returning to the firmware.

    `sanboot --no-describe --drive 0x80` hands the BIOS boot to the first hard
    disk's boot sector; under UEFI, `exit` gives control back to the firmware,
    which tries its next boot option (the disk's EFI/BOOT/BOOTX64.EFI).
    """
    lines = _header(f"corral: node {name} boots from its local disk")
    lines += [
        f"echo corral: {name} boots from its local disk (to reinstall: corral node reinstall)",
        "iseq ${platform} efi && goto efi ||",
        "sanboot --no-describe --drive 0x80 || goto failed",
        ":efi",
        "exit",
        ":failed",
        f"echo corral: {name} has nothing bootable on its first disk",
        "sleep 10",
        f"chain --autofree {retry_url}",
        "",
    ]
    return "\n".join(lines)
