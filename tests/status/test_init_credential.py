"""The initramfs's own token code (`agent/init`), run by busybox sh with busybox wget
against a live server: it spends the boot token and writes the node's identity."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from corral.actions import LocalActions
from corral.store.status import get_status
from tests.conftest import need_tool
from tests.services.conftest import LiveServer
from tests.status.conftest import boot_token, request

MAC = "52:54:00:00:00:09"
INIT = Path(__file__).parents[2] / "src" / "corral" / "agent" / "init"


def init_function(name: str) -> str:
    """One shell function of the init script, exactly as shipped."""
    found = re.search(rf"^{name}\(\) {{.*?^}}$", INIT.read_text(), re.M | re.S)
    assert found, f"{name} is not in {INIT}"
    return found.group(0)


def run_init_functions(tmp: Path, server: LiveServer, token: str, root: Path, **more: str) -> str:
    """get_credential then write_node_identity, as the init runs them."""
    busybox = shutil.which("busybox")
    assert busybox
    script = "\n".join(
        [
            'say() { echo "say: $*"; }',
            'fail() { echo "FAIL: $*"; exit 1; }',
            init_function("https_required"),
            init_function("mirrors"),
            init_function("on_servers"),
            init_function("first_up"),
            init_function("spend_at"),
            init_function("spend_boot_token"),
            init_function("get_credential"),
            init_function("write_node_identity").replace("/newroot", str(root)),
            "get_credential",
            "write_node_identity",
            'echo "node=$NODE"',
        ]
    )
    env = {
        "PATH": os.environ["PATH"],
        "SERVER": server.url,
        "BOOT_TOKEN": token,
        "RUN": str(tmp),
        "NODE": "",
        **more,
    }
    done = subprocess.run(
        [busybox, "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def test_the_initramfs_spends_its_token_and_writes_the_credential(
    cluster: LiveServer, tmp_path: Path
) -> None:
    need_tool("busybox")
    # busybox wget cannot pick its source address: this node lives at the server's, 127.0.0.1
    LocalActions(cluster.corral).add_nodes(["n009"], {"profiles": ["compute"]}, MAC, "127.0.0.1")
    token = boot_token(cluster, MAC, "127.0.0.1")
    assert token
    root = tmp_path / "newroot"
    out = run_init_functions(tmp_path, cluster, token, root)
    assert "FAIL" not in out, out
    assert "node=n009" in out
    credential_file = root / "etc" / "corral" / "node.credential"
    assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600
    credential = credential_file.read_text().strip()
    assert (root / "etc" / "corral" / "node").read_text() == "n009\n"
    assert (root / "etc" / "corral" / "server").read_text().startswith("http://")
    auth = {"Authorization": f"Bearer {credential}"}
    reply = request(cluster, "GET", "/api/v1/boot/self", headers=auth)
    assert reply.status == 200 and reply.json()["node"] == "n009"
    with cluster.corral.store.transaction() as conn:
        status = get_status(conn, "n009")
    assert status is not None and status["state"] == "pxe"
    # the same token again, as a replayed kernel command line would: refused
    again = run_init_functions(tmp_path, cluster, token, tmp_path / "other")
    assert "FAIL: the server refused this boot's token" in again


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_with_its_first_server_down_the_initramfs_spends_its_token_at_the_next(
    cluster: LiveServer, tmp_path: Path
) -> None:
    need_tool("busybox")
    LocalActions(cluster.corral).add_nodes(["n008"], {"profiles": ["compute"]}, MAC, "127.0.0.1")
    token = boot_token(cluster, MAC, "127.0.0.1")
    assert token
    dead = f"http://127.0.0.1:{closed_port()}"
    root = tmp_path / "newroot"
    # the kernel line names the dead server first (it wrote the boot script, then died)
    out = run_init_functions(
        tmp_path, cluster, token, root, SERVER=dead, SERVERS=f"{dead} {cluster.url}"
    )
    assert "FAIL" not in out, out
    assert f"say: {dead}/api/v1/boot/self/credential?format=sh failed: trying the next" in out
    assert "node=n008" in out
    # the agent is pointed at the server that answered; it knows both
    assert (root / "etc" / "corral" / "server").read_text() == f"{cluster.url}\n"
    assert (root / "etc" / "corral" / "servers").read_text() == f"{dead}\n{cluster.url}\n"


def test_the_same_path_is_tried_on_every_server_and_a_failed_one_comes_last() -> None:
    need_tool("busybox")
    busybox = shutil.which("busybox")
    assert busybox
    script = "\n".join(
        [
            init_function("mirrors"),
            'SERVERS="https://a:9443 https://b:9443" HTTP_SERVERS="http://a:9480 http://b:9480"',
            'mirrors "http://a:9480/artifacts/x"',
            'mirrors "https://b:9443/api/v1/boot/self/state"',
            'mirrors "http://elsewhere/y"',
            'DOWN=" http://a:9480"',  # a failed once: the rest of the boot tries it last
            'mirrors "http://a:9480/artifacts/x"',
        ]
    )
    done = subprocess.run([busybox, "sh", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "http://a:9480/artifacts/x http://b:9480/artifacts/x",
        "https://b:9443/api/v1/boot/self/state https://a:9443/api/v1/boot/self/state",
        "http://elsewhere/y http://a:9480/y http://b:9480/y",  # a server that left the list
        "http://b:9480/artifacts/x http://a:9480/artifacts/x",
    ]
