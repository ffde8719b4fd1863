"""Choosing the accelerator: KVM only where it really runs a guest.

Some hosts expose a `/dev/kvm` that opens but cannot run an ordinary guest
(a paravirtual variant: the guest hangs or triple-faults), so the device's
presence proves nothing. `auto` picks KVM only when a real KVM module for the
CPU (kvm_intel or kvm_amd) is loaded; everything else runs under TCG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Accel = Literal["tcg", "kvm", "auto"]
REAL_KVM_MODULES = ("kvm_intel", "kvm_amd")


def loaded_modules(proc_modules: Path = Path("/proc/modules")) -> set[str]:
    try:
        return {line.split()[0] for line in proc_modules.read_text().splitlines() if line}
    except OSError:
        return set()


def choose_accel(requested: Accel, modules: set[str] | None = None) -> Literal["tcg", "kvm"]:
    if requested != "auto":
        return requested
    mods = loaded_modules() if modules is None else modules
    usable = Path("/dev/kvm").exists() and any(m in mods for m in REAL_KVM_MODULES)
    return "kvm" if usable else "tcg"


def default_concurrency(accel: Literal["tcg", "kvm"], cores: int) -> int:
    """How many VMs may boot at once: TCG is CPU-bound (about 4 per core)."""
    return max(1, cores * (4 if accel == "tcg" else 16))
