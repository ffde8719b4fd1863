"""`corral image build --debootstrap`: a Debian tree from the machine's own mirror.

The mirror is read from apt's sources (deb822 `*.sources` files first, then
the one-line `sources.list` format), never hard-coded: a site with a local
mirror or a proxy gets it used, and an offline machine fails clearly.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from corral.images import tools
from corral.images.errors import ImageError
from corral.images.progress import QUIET, Reporter

APT = Path("/etc/apt")
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "riscv64": "riscv64"}


def _deb822_mirrors(text: str) -> Iterable[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("suites", "").split()


def _list_mirrors(text: str) -> Iterable[tuple[str, list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def mirror_from_sources(deb822: Sequence[str], one_line: Sequence[str]) -> str | None:
    """The first Debian archive that is not a security or updates suite."""
    entries = [e for t in deb822 for e in _deb822_mirrors(t)]
    entries += [e for t in one_line for e in _list_mirrors(t)]
    for uri, suites in entries:
        if not any(s.endswith(("-security", "/updates")) for s in suites):
            return uri.rstrip("/")
    return None


def configured_mirror(apt: Path = APT) -> str:
    deb822 = [p.read_text() for p in sorted((apt / "sources.list.d").glob("*.sources"))]
    lists = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    one_line = [p.read_text() for p in lists if p.is_file()]
    mirror = mirror_from_sources(deb822, one_line)
    if mirror is None:
        raise ImageError(f"no Debian mirror configured in {apt}/sources.list(.d); add one")
    return mirror


def host_architecture() -> str:
    machine = platform.machine()
    return DEB_ARCH.get(machine, machine)


def debootstrap_argv(
    suite: str, target: Path, mirror: str, include: Sequence[str] = (), variant: str = "minbase"
) -> list[str]:
    argv = ["debootstrap", f"--variant={variant}", f"--arch={host_architecture()}"]
    if include:
        argv.append("--include=" + ",".join(include))
    return [*argv, suite, str(target), mirror]


def run_debootstrap(argv: Sequence[str], reporter: Reporter = QUIET) -> None:
    tools.require("debootstrap", "debootstrap")
    reporter.start(f"debootstrap {argv[-3]}", None)
    tools.stream(argv, reporter.note)
