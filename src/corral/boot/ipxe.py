"""iPXE scripts: pure text from decisions already made (no database, no disk).

Downloads retry, because under a boot storm a request may time out: a failed
`kernel` or `initrd` waits a moment and tries again instead of dropping the
machine to a dead prompt.
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


def _header(comment: str) -> list[str]:
    return ["#!ipxe", f"# {comment}"]


def node_script(name: str, files: BootFiles) -> str:
    """Boot a known node: fetch kernel and initrd with retries, then boot."""
    lines = _header(f"corral: boot node {name}")
    lines += [
        f"echo corral: booting {name}",
        ":kernel",
        f"kernel {files.kernel_url} {' '.join(files.kernel_args)} || goto kernel_retry",
    ]
    for i, url in enumerate(files.initrd_urls):
        lines += [f":initrd{i}", f"initrd --name initrd{i} {url} || goto initrd{i}_retry"]
    lines += ["boot || goto kernel_retry", ""]
    lines += [":kernel_retry", f"sleep {RETRY_SECONDS}", "goto kernel"]
    for i in range(len(files.initrd_urls)):
        lines += [f":initrd{i}_retry", f"sleep {RETRY_SECONDS}", f"goto initrd{i}"]
    return "\n".join(lines) + "\n"


def wait_script(reason: str, retry_url: str, seconds: int = 10) -> str:
    """Say why this machine cannot boot yet, wait, and ask again."""
    lines = _header(reason)
    lines += [f"echo corral: {reason}", f"sleep {seconds}", f"chain --autofree {retry_url}", ""]
    return "\n".join(lines)


def discovery_menu(mac: str, server_url: str, candidates: Sequence[str]) -> str:
    """An unknown machine picks the node it is (Luna's way), or registers and waits."""
    base = f"{server_url}/boot/{mac}"
    lines = _header(f"corral: unknown machine {mac}")
    lines += [f"menu corral: unknown machine {mac}: which node is this?"]
    lines += ["item --gap -- Unassigned nodes:"]
    lines += [f"item node-{n} {n}" for n in candidates]
    lines += ["item --gap --", "item register Register and wait for an administrator"]
    lines += ["choose --default register --timeout 60000 target && goto ${target}", ""]
    for n in candidates:
        lines += [f":node-{n}", f"chain --autofree {base}/adopt/{n}.ipxe", ""]
    lines += [":register", f"chain --autofree {base}/register.ipxe", ""]
    return "\n".join(lines)
