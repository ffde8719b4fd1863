"""The agent's systemd unit and the drop-in that starts it, checked by systemd itself.

`systemd-analyze verify --root` loads them in a root that holds this machine's
own units (Debian 12's systemd, as in the image) plus the files the `agent`
overlay renders, and reports unknown keys, a missing ExecStart or a command
that is not there.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays.render import OverlayRenderer
from tests.conftest import need_tool
from tests.overlays.inventory import inventory

SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def rendered_root(tmp_path: Path, inv: Inventory) -> Path:
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(Path("/usr/bin/python3").resolve(), root / "usr/bin/python3")
    rendered = OverlayRenderer(Paths(tmp_path / "home")).render(inv, "n1", ["agent"])
    for path, item in rendered.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
        target.chmod(item.mode)
    return root


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    argv = ["systemd-analyze", "verify", f"--root={root}", "multi-user.target",
            "corral-agent.service", "corral-seed.service"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def test_systemd_accepts_the_units_and_the_drop_ins(tmp_path: Path) -> None:
    need_tool("systemd-analyze")
    root = rendered_root(tmp_path, inventory())
    files = (p for p in (root / "etc").rglob("*") if p.is_file())
    assert sorted(p.relative_to(root).as_posix() for p in files) == [
        "etc/systemd/system/corral-agent.service",
        "etc/systemd/system/corral-seed.service",
        "etc/systemd/system/multi-user.target.d/corral-agent.conf",
        "etc/systemd/system/multi-user.target.d/corral-seed.conf",
    ]
    done = verify(root)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_check_catches_a_broken_unit(tmp_path: Path) -> None:
    need_tool("systemd-analyze")
    root = rendered_root(tmp_path, inventory())
    unit = root / "etc/systemd/system/corral-agent.service"
    unit.write_text(unit.read_text().replace("ExecStart=", "ExecStrat="))
    dropin = root / "etc/systemd/system/multi-user.target.d/corral-agent.conf"
    dropin.write_text(dropin.read_text().replace("Wants=", "Wantz="))
    done = verify(root)
    assert done.returncode != 0
    assert "Unknown key 'Wantz'" in done.stderr
    assert "Unknown key 'ExecStrat'" in done.stderr
