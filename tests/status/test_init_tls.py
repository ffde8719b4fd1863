"""The initramfs's TLS and signature code (`agent/init`), run by busybox sh with the real
openssl against a live `corral serve` that answers HTTPS with a certificate of the cluster CA."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import pki
from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images import catalog
from corral.images.torrent import make_torrent
from corral.inventory.models import Cluster
from corral.services.serve import CorralServer, ServeOptions
from tests.conftest import need_tool
from tests.helpers.loop import run_in_thread
from tests.services.conftest import LiveServer
from tests.status.conftest import CLUSTER, boot_token, packed_image
from tests.status.test_init_credential import INIT

MAC = "52:54:00:00:00:0a"
TLS_FUNCTIONS = (
    "tls_request",
    "https_required",
    "mirrors",
    "on_servers",
    "spend_at",
    "spend_boot_token",
    "get_credential",
)


@pytest.fixture
def tls_cluster(corral_home: Path) -> Iterator[tuple[LiveServer, str]]:
    """A live server with HTTPS on a second port; (server, https URL)."""
    corral = Corral(Settings.from_env())
    options = ServeOptions(
        address="127.0.0.1", http_port=0, https_port=0, tftp_port=0, dhcp=False, bt_port=0
    )
    server = CorralServer(corral, options)
    for started in run_in_thread(server):
        token = corral.admin_token()
        assert token
        corral.apply(Cluster.model_validate(CLUSTER))
        with corral.store.transaction() as conn:
            catalog.insert(conn, packed_image())
        yield LiveServer(corral, started, options.server_url, token), options.api_url


def init_function(name: str) -> str:
    """One shell function of the init script as shipped (a `{ }` or a subshell `( )` body)."""
    found = re.search(rf"^{name}\(\) ([({{]).*?^[)}}]$", INIT.read_text(), re.M | re.S)
    assert found, f"{name} is not in {INIT}"
    return found.group(0)


def run_init(script_lines: list[str], env: dict[str, str], functions: tuple[str, ...]) -> str:
    busybox = shutil.which("busybox")
    assert busybox
    script = "\n".join(
        [
            'say() { echo "say: $*"; }',
            'fail() { echo "FAIL: $*"; exit 1; }',
            *(init_function(f) for f in functions),
            *script_lines,
        ]
    )
    done = subprocess.run(
        [busybox, "sh", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def spend_over_tls(tmp: Path, api_url: str, token: str, ca: Path) -> str:
    env = {"SERVER": api_url, "BOOT_TOKEN": token, "RUN": str(tmp), "CA_CERT": str(ca)}
    return run_init(["get_credential", 'echo "node=$NODE cred=${#CREDENTIAL}"'], env, TLS_FUNCTIONS)


def test_the_initramfs_spends_its_token_over_https_checked_against_the_cluster_ca(
    tls_cluster: tuple[LiveServer, str], tmp_path: Path
) -> None:
    need_tool("busybox")
    need_tool("openssl")
    server, api_url = tls_cluster
    assert api_url.startswith("https://127.0.0.1:")
    LocalActions(server.corral).add_nodes(["n010"], {"profiles": ["compute"]}, MAC, "127.0.0.1")
    token = boot_token(server, MAC, "127.0.0.1")
    assert token
    # the iPXE script (plain HTTP) points the initramfs at the HTTPS API
    ca = pki.Pki(server.corral.settings.paths.pki).ca_cert
    out = spend_over_tls(tmp_path, api_url, token, ca)
    assert "FAIL" not in out, out
    assert "node=n010 cred=43" in out


def test_a_server_whose_certificate_another_ca_signed_gets_no_token(
    tls_cluster: tuple[LiveServer, str], tmp_path: Path
) -> None:
    need_tool("busybox")
    need_tool("openssl")
    server, api_url = tls_cluster
    LocalActions(server.corral).add_nodes(["n011"], {"profiles": ["compute"]}, MAC, "127.0.0.1")
    token = boot_token(server, MAC, "127.0.0.1")
    assert token
    other = pki.Pki(tmp_path / "other-ca")
    pki.ensure(other)
    out = spend_over_tls(tmp_path, api_url, token, other.ca_cert)
    assert "FAIL: the server refused this boot's token" in out
    assert "verify" in (tmp_path / "tls.log").read_text().lower()
    # the handshake failed before the token was sent: it is still good with the right CA
    right = pki.Pki(server.corral.settings.paths.pki).ca_cert
    assert "node=n011" in spend_over_tls(tmp_path, api_url, token, right)


def test_with_a_ca_the_initramfs_refuses_a_plain_http_api(
    tls_cluster: tuple[LiveServer, str], tmp_path: Path
) -> None:
    need_tool("busybox")
    server, _ = tls_cluster
    ca = pki.Pki(server.corral.settings.paths.pki).ca_cert
    out = spend_over_tls(tmp_path, server.url, "whatever", ca)
    assert "FAIL: refusing http://" in out


def verify(tmp: Path, keys: pki.Pki, sha256: str, info_hash: str, signature: str) -> str:
    env = {
        "RUN": str(tmp),
        "BOOT": "stateless",
        "IMAGE": "tiny",
        "SIGNING_PUB": str(keys.signing_pub),
        "IMAGE_SHA256": sha256,
        "CORRAL_TORRENT_INFO_HASH": info_hash,
        "CORRAL_IMAGE_SIGNATURE": signature,
    }
    return run_init(["verify_image_signature", "echo verified"], env, ("verify_image_signature",))


def test_the_initramfs_boots_only_an_image_the_server_signed(tmp_path: Path) -> None:
    need_tool("busybox")
    need_tool("openssl")
    keys = pki.Pki(tmp_path / "pki")
    pki.ensure(keys)
    sha, btih = "a" * 64, "b" * 40
    good = base64.b64encode(pki.sign_image(keys, sha, btih)).decode()
    assert "verified" in verify(tmp_path, keys, sha, btih, good)
    altered = verify(tmp_path, keys, "c" * 64, btih, good)
    assert "FAIL: image tiny: bad signature" in altered and "verified" not in altered
    other_torrent = verify(tmp_path, keys, sha, "d" * 40, good)
    assert "FAIL: image tiny: bad signature" in other_torrent
    stranger = pki.Pki(tmp_path / "stranger")
    pki.ensure(stranger)
    forged = base64.b64encode(pki.sign_image(stranger, sha, btih)).decode()
    assert "FAIL: image tiny: bad signature" in verify(tmp_path, keys, sha, btih, forged)
    assert "FAIL: image tiny is not signed" in verify(tmp_path, keys, sha, btih, "")


def test_the_initramfs_takes_only_the_torrent_whose_info_hash_is_signed(
    tmp_path: Path, node_client: str
) -> None:
    need_tool("busybox")
    image = tmp_path / "image.tar.zst"
    image.write_bytes(os.urandom(300_000))
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    made = make_torrent(image, "tiny.tar.zst", sha, "http://10.0.0.1:9480")
    (tmp_path / "image.torrent").write_bytes(made.data)
    # another torrent of other bytes: what a tampered download would hand the client
    other = tmp_path / "other.tar.zst"
    other.write_bytes(os.urandom(300_000))
    forged = make_torrent(other, "tiny.tar.zst", sha, "http://10.0.0.1:9480")
    (tmp_path / "forged.torrent").write_bytes(forged.data)

    def check(torrent: str) -> str:
        env = {"RUN": str(tmp_path), "TORRENT_INFO_HASH": made.info_hash, "PATH": node_client}
        lines = [f"torrent_is_signed {tmp_path / torrent} && echo taken"]
        return run_init(lines, env, ("torrent_is_signed",))

    assert "taken" in check("image.torrent")
    refused = check("forged.torrent")
    assert "taken" not in refused
    assert f"torrent info-hash {forged.info_hash} is not the signed {made.info_hash}" in refused
