"""Running a command inside an image: `corral image shell|exec` (Luna's lchroot).

Run as `python -m corral.images.chroot ROOT [--release R --machine M] -- CMD...`
by `api.run_in_image`. This process unshares a mount namespace, so /proc,
/sys, /dev and the tmpfs on /run vanish with it and nothing leaks onto the
host, even on a crash. Then it chroots and execs the command.

`uname -r` must answer the image's kernel, not the host's. The kernel gives
no way to set the release a process sees (a UTS namespace sets only the host
and domain names; setarch --uname-2.6 only fakes 2.6.x), so a shell-script
`uname` shim is written to /run/corral/bin (a tmpfs, so never into the
image), put first in PATH, and bind-mounted over the image's own uname
binary when that is a real file (coreutils), so absolute /usr/bin/uname
calls see it too. Limits: programs calling uname(2) directly (e.g. depmod
without a version argument) still see the host's release; so does a busybox
shell built with SH_STANDALONE (Debian's busybox-static), whose `uname`
applet runs inside the shell. Pass versions explicitly in such cases.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l", "i386": "i686"}
PATH = "/run/corral/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHIM = r"""#!/bin/sh
# corral: uname inside `corral image shell|exec`, answering the image's kernel release.
release='@RELEASE@'
machine='@MACHINE@'
read -r sysname < /proc/sys/kernel/ostype
read -r node < /proc/sys/kernel/hostname
read -r version < /proc/sys/kernel/version
[ $# -eq 0 ] && set -- -s
flags=
for arg in "$@"; do
  case $arg in
    -a|--all) flags="${flags}snrvmo" ;;
    --kernel-name) flags="${flags}s" ;;
    --nodename) flags="${flags}n" ;;
    --kernel-release) flags="${flags}r" ;;
    --kernel-version) flags="${flags}v" ;;
    --machine) flags="${flags}m" ;;
    --processor) flags="${flags}p" ;;
    --hardware-platform) flags="${flags}i" ;;
    --operating-system) flags="${flags}o" ;;
    --help|--version) echo "uname (corral image shim)"; exit 0 ;;
    -[snrvmpio]*) flags="${flags}${arg#-}" ;;
    *) echo "uname: invalid argument '$arg'" >&2; exit 1 ;;
  esac
done
out=
add() { out="${out:+$out }$1"; }
case $flags in *s*) add "$sysname" ;; esac
case $flags in *n*) add "$node" ;; esac
case $flags in *r*) add "$release" ;; esac
case $flags in *v*) add "$version" ;; esac
case $flags in *m*) add "$machine" ;; esac
case $flags in *p*) add unknown ;; esac
case $flags in *i*) add unknown ;; esac
case $flags in *o*) add GNU/Linux ;; esac
echo "$out"
"""

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str | Path, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode(),
            os.fsencode(target),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() or None,
        ),
        f"mount {target}",
    )


def shim_text(release: str, machine: str) -> str:
    return SHIM.replace("@RELEASE@", release).replace("@MACHINE@", machine)


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def mount_api_filesystems(root: Path) -> None:
    """Private mount namespace with /proc, /sys, /dev and a fresh /run in `root`."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    if _is_dir(root / "proc"):
        mount("proc", root / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if _is_dir(root / "sys"):
        mount("sysfs", root / "sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    if _is_dir(root / "dev"):
        mount("/dev", root / "dev", None, MS_BIND | MS_REC)
    if _is_dir(root / "run"):
        mount("tmpfs", root / "run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        (root / "run/corral/bin").mkdir(parents=True)


def install_shims(root: Path, release: str | None, machine: str) -> None:
    """Write the uname shim and a copy of the host's resolv.conf into /run/corral."""
    corral = root / "run/corral"
    if not corral.is_dir():
        return
    if release:
        shim = corral / "bin/uname"
        shim.write_text(shim_text(release, machine))
        shim.chmod(0o755)
    resolv = root / "etc/resolv.conf"
    if resolv.is_file() and not resolv.is_symlink() and Path("/etc/resolv.conf").is_file():
        shutil.copyfile("/etc/resolv.conf", corral / "resolv.conf")
        mount(str(corral / "resolv.conf"), resolv, None, MS_BIND)


def cover_uname() -> None:
    """After chroot: bind the shim over the image's own uname binary if it is a real one."""
    if not Path("/run/corral/bin/uname").is_file():
        return
    done = set()
    for candidate in ("/usr/bin/uname", "/bin/uname"):
        real = os.path.realpath(candidate)
        if real not in done and os.path.basename(real) == "uname" and os.path.isfile(real):
            mount("/run/corral/bin/uname", real, None, MS_BIND)
            done.add(real)


def environment() -> dict[str, str]:
    env = {"PATH": PATH, "HOME": "/root", "CORRAL_IMAGE_SHELL": "1"}
    for key in ("TERM", "LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="corral-image-chroot")
    parser.add_argument("root", type=Path)
    parser.add_argument("--release")
    parser.add_argument("--machine", default="")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    mount_api_filesystems(root)
    install_shims(root, args.release, MACHINES.get(args.machine, args.machine))
    os.chroot(root)
    os.chdir("/")
    cover_uname()
    env = environment()
    try:
        os.execvpe(args.command[0], args.command, env)  # noqa: S606 (the point of this tool)
    except OSError as exc:
        print(f"corral image exec: {args.command[0]}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(127) from None


if __name__ == "__main__":
    main()
