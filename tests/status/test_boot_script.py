"""The firmware's boot script over a live server: artifacts from the typed image record,
this boot's token, and the discovery menu for unknown machines."""

from __future__ import annotations

import json
import re

from corral.actions import LocalActions
from corral.images import catalog
from corral.images.records import ArtifactFile
from corral.store.credentials import hash_secret
from corral.store.runtime import list_discovered
from corral.store.status import get_status
from tests.services.conftest import LiveServer
from tests.status.conftest import MAC1, N001, N002, SHA, packed_image, request


def script(server: LiveServer, mac: str, source: str, path: str = "") -> str:
    reply = request(server, "GET", path or f"/boot/{mac}.ipxe", source=source)
    assert reply.status == 200, reply.body
    return reply.body.decode()


def test_boot_script_names_the_image_artifacts_and_carries_a_token(cluster: LiveServer) -> None:
    text = script(cluster, MAC1, N001)
    url = cluster.url
    assert f"kernel {url}/artifacts/{SHA['kernel']} initrd=initrd0 console=ttyS0" in text
    assert f"corral.server={url} corral.node=n001 corral.mac={MAC1}" in text
    assert f"initrd --name initrd0 {url}/artifacts/{SHA['initramfs']}" in text
    token = re.search(r"corral\.token=(\S+)", text)
    assert token and len(token.group(1)) >= 43
    with cluster.corral.store.transaction() as conn:  # fetching a script changes no state
        assert get_status(conn, "n001") is None
        stored = conn.exec_driver_sql("SELECT hash, status FROM boot_tokens").all()
    assert stored == [(hash_secret(token.group(1)), "live")]  # the hash, never the token


def test_an_unpacked_image_says_what_to_do(cluster: LiveServer) -> None:
    with cluster.corral.store.transaction() as conn:
        catalog.update(conn, packed_image().model_copy(update={"artifacts": None}))
    text = script(cluster, MAC1, N001)
    assert "corral image pack tiny" in text and "corral.token" not in text


def test_a_host_at_another_address_gets_no_token_for_a_node(cluster: LiveServer) -> None:
    for source in ("127.0.0.99", N002):
        text = script(cluster, MAC1, source)
        assert "corral.token" not in text and "kernel " not in text
        assert f"address {source} is not node n001's" in text
    with cluster.corral.store.transaction() as conn:
        assert get_status(conn, "n001") is None


def test_an_unknown_machine_gets_the_menu_and_is_recorded(cluster: LiveServer) -> None:
    LocalActions(cluster.corral).add_nodes(["n004"], {"profiles": ["compute"]})
    mac = "52:54:00:00:00:99"
    menu = script(cluster, mac, "127.0.0.99")
    assert "item node-n004 n004" in menu and "item node-n001" not in menu
    assert "read code" in menu
    assert f"/boot/{mac}/adopt/n004.ipxe?code=${{code:uristring}}" in menu
    with cluster.corral.store.transaction() as conn:
        assert mac in [d["mac"] for d in list_discovered(conn)]
    assert request(cluster, "GET", "/boot/not-a-mac.ipxe").status == 400


def adopt(server: LiveServer, mac: str, name: str, query: str = "", **headers: str) -> str:
    reply = request(server, "GET", f"/boot/{mac}/adopt/{name}.ipxe{query}", headers=headers)
    assert reply.status == 200, reply.body
    return reply.body.decode()


def mac_of(server: LiveServer, name: str) -> str | None:
    return server.corral.read().nodes[name].interfaces[0].mac


def test_adopting_needs_an_enrollment_code_or_the_admin_token(cluster: LiveServer) -> None:
    # the old server let any anonymous GET claim a free node, and its keys with it
    LocalActions(cluster.corral).add_nodes(["n004", "n005", "n006"], {"profiles": ["compute"]})
    assert "needs an enrollment code" in adopt(cluster, "52:54:00:00:00:94", "n004")
    assert "unknown enrollment code" in adopt(cluster, "52:54:00:00:00:94", "n004", "?code=AAAA")
    assert mac_of(cluster, "n004") is None
    auth = {"Authorization": f"Bearer {cluster.token}"}
    made = request(cluster, "POST", "/api/v1/enroll-codes", body={"minutes": 5}, headers=auth)
    assert made.status == 201
    code = made.json()["code"]
    typed = code.lower().replace("-", "")  # as a person may type it at the console
    assert "now n004" in adopt(cluster, "52:54:00:00:00:94", "n004", f"?code={typed}")
    assert mac_of(cluster, "n004") == "52:54:00:00:00:94"
    again = adopt(cluster, "52:54:00:00:00:95", "n005", f"?code={code}")
    assert "already used" in again and mac_of(cluster, "n005") is None
    with cluster.corral.store.transaction() as conn:
        assert conn.exec_driver_sql("SELECT hash FROM enroll_codes").scalar() != code
    assert "now n006" in adopt(cluster, "52:54:00:00:00:96", "n006", **auth)
    assert "not free" in adopt(cluster, "52:54:00:00:00:97", "n004", **auth)


def test_enroll_code_from_the_cli_is_shown_once_and_works(cluster: LiveServer) -> None:
    from click.testing import CliRunner

    from corral.cli.main import cli, register

    register()
    remote = ["--server", cluster.url, "--token", cluster.token]
    shown = CliRunner().invoke(cli, [*remote, "node", "enroll-code", "-o", "json"])
    assert shown.exit_code == 0, shown.output
    code = json.loads(shown.stdout)["code"]
    LocalActions(cluster.corral).add_nodes(["n004"], {"profiles": ["compute"]})
    assert "now n004" in adopt(cluster, "52:54:00:00:00:94", "n004", f"?code={code}")


def test_ipxe_asks_for_the_nic_pack_of_its_nic_unless_the_node_wants_every_driver(
    cluster: LiveServer,
) -> None:
    base, nics = "b" * 64, "c" * 64
    image = packed_image()
    assert image.artifacts is not None
    initramfs = image.artifacts.initramfs.model_copy(
        update={
            "base": ArtifactFile(sha256=base, size=5, format="cpio+gzip"),
            "nics": ArtifactFile(sha256=nics, size=5, format="cpio+gzip"),
        }
    )
    arts = image.artifacts.model_copy(update={"initramfs": initramfs})
    with cluster.corral.store.transaction() as conn:
        catalog.update(conn, image.model_copy(update={"artifacts": arts}))
    url = cluster.url
    text = script(cluster, MAC1, N001)
    assert f"kernel {url}/artifacts/{SHA['kernel']} initrd=initrd0 initrd=initrd1 " in text
    assert f"initrd --name initrd0 {url}/artifacts/{base} " in text
    ids = "${pci/${netX/busloc}.0.2}:${pci/${netX/busloc}.2.2}"
    assert f"initrd --name initrd1 {url}/nics/{nics}?pci={ids} " in text
    # corral.nics=all: the first part and every driver, in the one file other boots get
    LocalActions(cluster.corral).set_nodes(["n001"], {"kernel_args": ["corral.nics=all"]})
    text = script(cluster, MAC1, N001)
    assert f"initrd --name initrd0 {url}/artifacts/{SHA['initramfs']} " in text
    assert "initrd1" not in text and "/nics/" not in text
