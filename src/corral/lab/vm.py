"""One QEMU virtual machine that network-boots, as the lab and the tests run it.

QEMU runs inside the lab's network namespace on a tap device enslaved to the
lab bridge. Its serial console goes to a log file (what tests assert on), its
QMP socket is how the `qemu` power driver and the boot queue control it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from corral.lab.netns import ns_argv

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
UEFI_MIN_MEMORY = 256  # OVMF crashes after the downloads with less
# EDK2 (OVMF and AAVMF) reads these fw_cfg files at boot: "no" drops its PXE boot options,
# so a NIC's boot options are "UEFI HTTPv4" and "UEFI HTTPv6" alone
OVMF_NO_PXE = [
    "-fw_cfg",
    "name=opt/org.tianocore/IPv4PXESupport,string=no",
    "-fw_cfg",
    "name=opt/org.tianocore/IPv6PXESupport,string=no",
]


@dataclass(frozen=True)
class VmSpec:
    name: str
    mac: str
    tap: str
    workdir: Path
    memory_mb: int = 192
    uefi: bool = False
    accel: Literal["tcg", "kvm"] = "tcg"
    nic_model: str = "virtio-net-pci"
    disk: Path | None = None
    paused: bool = False
    # QEMU's NIC option ROM is iPXE; "" removes it so the firmware's own PXE
    # stack boots (OVMF: PXE -> TFTP ipxe.efi -> iPXE), as on real hardware.
    nic_rom: str | None = None
    # UEFI HTTP boot only: OVMF's PXE boot options turned off (OVMF_NO_PXE), so the
    # firmware's first boot option is "UEFI HTTPv4" (with nic_rom="": no iPXE ROM)
    http_boot: bool = False

    @property
    def serial_log(self) -> Path:
        return self.workdir / f"{self.name}.serial.log"

    @property
    def serial_socket(self) -> Path:
        return self.workdir / f"{self.name}.console"

    @property
    def qmp_socket(self) -> Path:
        return self.workdir / f"{self.name}.qmp"

    @property
    def pidfile(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    @property
    def vars_file(self) -> Path:
        return self.workdir / f"{self.name}.OVMF_VARS.fd"


def nic_device(spec: VmSpec) -> str:
    device = f"{spec.nic_model},netdev=net0,mac={spec.mac}"
    return device if spec.nic_rom is None else f"{device},romfile={spec.nic_rom}"


def qemu_argv(spec: VmSpec) -> list[str]:
    """The QEMU command line (no shell): network boot first, retry on failure."""
    accel = "tcg,tb-size=32" if spec.accel == "tcg" else "kvm"
    memory = max(spec.memory_mb, UEFI_MIN_MEMORY) if spec.uefi else spec.memory_mb
    argv = [
        "qemu-system-x86_64",
        "-name",
        spec.name,
        "-accel",
        accel,
        "-machine",
        "q35",
        "-smp",
        "1",
        "-m",
        str(memory),
        "-nographic",
        "-nodefaults",
        "-monitor",
        "none",
        # the console is a socket (for `corral console`) that also logs to a file
        "-chardev",
        f"socket,id=console,path={spec.serial_socket},server=on,wait=off,"
        f"logfile={spec.serial_log},logappend=on",
        "-serial",
        "chardev:console",
        "-qmp",
        f"unix:{spec.qmp_socket},server=on,wait=off",
        "-netdev",
        f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
        "-device",
        nic_device(spec),
        "-boot",
        "order=n,reboot-timeout=2000",
        "-pidfile",
        str(spec.pidfile),
    ]
    if spec.uefi:
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={spec.vars_file}",
        ]
        if spec.http_boot:
            argv += OVMF_NO_PXE
    if spec.disk is not None:
        argv += ["-drive", f"file={spec.disk},if=virtio,format=qcow2"]
    if spec.paused:
        argv += ["-S"]
    return argv


def start_vm(spec: VmSpec, netns: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start QEMU in `netns`; the caller owns the process (stop it by PID)."""
    spec.workdir.mkdir(parents=True, exist_ok=True)
    spec.serial_log.unlink(missing_ok=True)
    if spec.uefi and not spec.vars_file.exists():
        shutil.copyfile(OVMF_VARS, spec.vars_file)
    out = open(log or spec.workdir / f"{spec.name}.qemu.log", "ab")  # noqa: SIM115
    try:
        return subprocess.Popen(
            ns_argv(netns, qemu_argv(spec)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        out.close()


def create_disk(path: Path, size_gb: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_gb}G"], check=True
        )
    return path
