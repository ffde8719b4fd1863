"""Running the external programs the image code relies on (tar, skopeo, umoci,
rsync, debootstrap, depmod): argv lists only, errors carry the tool's own last
lines, and a missing program is named."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from corral.images.errors import ToolFailed


def require(program: str, package: str | None = None) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found is None:
        hint = f" (Debian package {package})" if package else ""
        raise ToolFailed(f"{program} is not installed{hint}")
    return found


def _failure(argv: Sequence[str], code: int, output: str) -> ToolFailed:
    lines = [line for line in output.splitlines() if line.strip()][-3:]
    detail = ": " + " / ".join(lines) if lines else ""
    return ToolFailed(f"{Path(argv[0]).name} failed (exit {code}){detail}")


def run(argv: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run a tool to completion; its stdout, or ToolFailed with its stderr."""
    proc = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, errors="replace", check=False
    )
    if proc.returncode != 0:
        raise _failure(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def stream(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a tool, handing each output line (split at \\n or \\r) to `on_line`."""
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    tail: list[str] = []
    buf = b""
    try:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            buf += chunk
            *lines, buf = buf.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                if line:
                    tail = [*tail[-4:], line]
                    on_line(line)
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.stdout.close()
        code = proc.wait()
    if code != 0:
        raise _failure(argv, code, "\n".join(tail))
