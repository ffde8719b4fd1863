"""`corral-overlay.toml`: which overlays the agent keeps current, and their reload commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import OverlayError, sources
from corral.overlays.runtime import runtime_document


def user_overlay(paths: Paths, name: str, meta: str) -> Path:
    root = paths.home / "overlays" / name
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd.j2").write_text("welcome to {{ node.name }}\n")
    (root / sources.META_FILE).write_text(meta)
    return root


def test_builtin_runtime_overlays_and_their_reload_commands(paths: Paths) -> None:
    runtime = {s.name: sources.meta(s) for s in sources.available(paths) if sources.meta(s).runtime}
    assert {name: m.reload for name, m in runtime.items()} == {
        "authorized-keys": None,
        "hosts": None,
        "mpi": None,
        "munge": "systemctl try-restart munge.service",
        "nfs-exports": "systemd-tmpfiles --create /etc/tmpfiles.d/corral-nfs.conf && exportfs -ra",
        "slurm-config": "/usr/lib/corral/slurm-reconfigure",
        "users": "/usr/lib/corral/corral-users",
    }


def test_the_metadata_file_is_not_shipped_to_the_node(paths: Paths) -> None:
    user_overlay(paths, "motd", 'runtime = true\nreload = "true"\n')
    source = sources.find(paths, "motd")
    assert [f.target for f in sources.files(source)] == ["/etc/motd"]
    assert sources.meta(source) == sources.OverlayMeta(runtime=True, reload="true")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtime = yes\n", "corral-overlay.toml"),
        ('runtime = "true"\n', "'runtime' must be true or false"),
        ("runtime = true\nreload = 3\n", "'reload' must be a command line"),
        ('runtime = true\nreload = ""\n', "'reload' must be a command line"),
        ("runtime = true\nrestart = 1\n", "unknown key(s) restart (known: reload, runtime)"),
    ],
)
def test_a_bad_metadata_file_is_an_error_naming_it(paths: Paths, text: str, message: str) -> None:
    user_overlay(paths, "motd", text)
    with pytest.raises(OverlayError, match=r"overlay motd: corral-overlay\.toml") as err:
        sources.meta(sources.find(paths, "motd"))
    assert message in str(err.value)


def test_the_runtime_document_holds_only_runtime_overlays_with_their_reload(
    paths: Paths, inv: Inventory
) -> None:
    user_overlay(paths, "motd", 'runtime = true\nreload = "systemctl reload motd"\n')
    node = inv.nodes["n1"].model_copy(update={"overlays": ["system", "motd"]})
    inv.nodes["n1"] = node
    document = runtime_document(paths, inv, "n1")
    data = json.loads(document.body)
    assert [(o["name"], o["reload"]) for o in data["overlays"]] == [
        ("hosts", None),
        ("authorized-keys", None),
        ("motd", "systemctl reload motd"),
    ]
    paths_sent = [f["path"] for o in data["overlays"] for f in o["files"]]
    assert paths_sent == ["/etc/hosts", "/root/.ssh/authorized_keys", "/etc/motd"]
    assert runtime_document(paths, inv, "n1").etag == document.etag  # same inputs, same tag
