"""`corral rpi eeprom-config` and the boot.sig signer (checked by openssl, not by us)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from corral.images.rpisign import (
    KEY_FILE,
    public_pem,
    sign_boot_file,
    sign_boot_image,
    site_key,
)
from tests.cli.conftest import Run
from tests.cli.test_cli import ok, setup_compute
from tests.conftest import need_tool


def test_eeprom_config_for_tftp_names_network_first_and_the_server(corral: Run) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "pi01", "--profile", "compute", "--rpi-serial", "10000000ABCDEF01"))
    out = ok(corral("rpi", "eeprom-config", "pi01", "--server-ip", "10.77.0.1")).out
    assert out.splitlines() == ["[all]", "BOOT_ORDER=0xf12", "TFTP_PREFIX=0", "TFTP_IP=10.77.0.1"]


def test_eeprom_config_for_http_boot_prints_host_path_and_the_site_key(
    corral: Run, home: Path
) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "pi01", "--profile", "compute", "--rpi-serial", "abcdef01"))
    out = ok(corral("rpi", "eeprom-config", "pi01", "--server-ip", "10.77.0.1", "--http")).out
    assert (
        "BOOT_ORDER=0xf17\nHTTP_HOST=10.77.0.1\nHTTP_PORT=9480\nHTTP_PATH=boot/rpi/abcdef01\n"
        in out
    )
    key_file = home / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert public_pem(site_key(home)) in out  # the same key on the next call
    assert "PRIVATE" not in out


def test_eeprom_config_of_an_unknown_node_says_so(corral: Run) -> None:
    result = corral("rpi", "eeprom-config", "nope", "--server-ip", "10.77.0.1")
    assert result.code != 0 and "no node 'nope'" in result.error_line


@pytest.mark.parametrize("signer", ["bytes", "file"])
def test_boot_sig_verifies_with_openssl(tmp_path: Path, signer: str) -> None:
    need_tool("openssl")
    key = site_key(tmp_path)
    image = b"corral boot.img\x00" * 300_000  # over the file signer's 1 MiB chunk
    (tmp_path / "boot.img").write_bytes(image)
    if signer == "bytes":
        sig = sign_boot_image(image, key, now=1_700_000_000)
    else:
        sig = sign_boot_file(tmp_path / "boot.img", key, now=1_700_000_000)
    digest, ts, rsa = sig.splitlines()
    assert ts == "ts: 1700000000" and rsa.startswith("rsa2048: ")
    (tmp_path / "boot.sig.bin").write_bytes(bytes.fromhex(rsa.removeprefix("rsa2048: ")))
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(pub)
    sha = subprocess.run(
        ["sha256sum", str(tmp_path / "boot.img")], capture_output=True, text=True, check=True
    )
    assert digest == sha.stdout.split()[0]
    verify = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
         "-signature", str(tmp_path / "boot.sig.bin"), str(tmp_path / "boot.img")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and "Verified OK" in verify.stdout
