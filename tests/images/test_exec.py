"""`corral image exec|shell`: a private mount namespace, the image's uname -r, change tracking."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.app import Corral
from corral.images import api
from corral.images.chroot import shim_text
from corral.images.records import Image


def host_mounts() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


@pytest.fixture(autouse=True)
def _root(root_only: None) -> None:
    pass


def test_uname_r_answers_the_image_kernel(
    app: Corral, tiny: Image, capfd: pytest.CaptureFixture[str]
) -> None:
    assert tiny.kernel is not None
    assert api.run_in_image(app, "tiny", ["uname", "-r"]) == 0
    assert capfd.readouterr().out == f"{tiny.kernel.version}\n"
    assert api.run_in_image(app, "tiny", ["uname", "-srm"]) == 0
    assert capfd.readouterr().out == f"Linux {tiny.kernel.version} x86_64\n"


def test_api_filesystems_are_mounted_inside_and_nothing_leaks(
    app: Corral, tiny: Image, capfd: pytest.CaptureFixture[str]
) -> None:
    before = host_mounts()
    script = "test -e /proc/self/stat && test -d /sys/class && test -c /dev/null && echo inside"
    assert api.run_in_image(app, "tiny", ["sh", "-c", script]) == 0
    assert capfd.readouterr().out == "inside\n"
    assert host_mounts() == before
    assert list((api.rootfs(app, "tiny") / "proc").iterdir()) == []
    assert list((api.rootfs(app, "tiny") / "run").iterdir()) == []


def test_exit_code_and_unchanged_image(app: Corral, tiny: Image) -> None:
    assert api.run_in_image(app, "tiny", ["sh", "-c", "exit 7"]) == 7
    assert api.run_in_image(app, "tiny", ["no-such-command"]) == 127
    after = api.get_image(app, "tiny")
    assert after.changed is None and after.digest == tiny.digest


def test_changes_mark_the_image_changed(app: Corral, tiny: Image) -> None:
    assert api.run_in_image(app, "tiny", ["sh", "-c", "echo hello > /etc/motd"]) == 0
    after = api.get_image(app, "tiny")
    assert after.changed is not None and after.digest is None
    assert after.fingerprint != tiny.fingerprint
    assert (api.rootfs(app, "tiny") / "etc/motd").read_text() == "hello\n"


def test_shim_answers_like_coreutils(tmp_path: Path) -> None:
    import subprocess

    shim = tmp_path / "uname"
    shim.write_text(shim_text("9.9.9-test", "x86_64"))
    shim.chmod(0o755)

    def run(*args: str) -> str:
        return subprocess.run(
            [str(shim), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    assert run() == "Linux"
    assert run("-r") == run("--kernel-release") == "9.9.9-test"
    assert run("-m") == "x86_64"
    assert run("-a").startswith("Linux ") and " 9.9.9-test " in run("-a")
    assert run("-a").endswith(" x86_64 GNU/Linux")
