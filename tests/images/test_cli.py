"""`corral image ...` end to end: list/show -o json, rename, delete refused while in use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from corral.app import Corral
from corral.cli.main import cli, register
from corral.images import api
from corral.images.records import Image
from corral.inventory import ops


def corral(*args: str) -> Result:
    register()
    return CliRunner().invoke(cli, list(args))


def test_list_and_show_json(tiny: Image) -> None:
    listed = json.loads(corral("image", "list", "-o", "json").output)
    assert [(i["name"], i["digest"], i["size"]) for i in listed] == [
        ("tiny", tiny.digest, tiny.size)
    ]
    assert listed[0]["kernels"][0]["version"] == tiny.kernel.version  # type: ignore[union-attr]
    shown = json.loads(corral("image", "show", "tiny", "-o", "json").output)
    assert shown["architecture"] == "amd64" and shown["source"] == tiny.source


def test_rename_and_delete(app: Corral, tiny: Image) -> None:
    assert corral("image", "rename", "tiny", "small").exit_code == 0
    assert (app.settings.paths.images / "small/rootfs/bin/busybox").is_file()
    assert [i.name for i in api.list_images(app)] == ["small"]
    assert corral("image", "delete", "small").exit_code == 0
    assert api.list_images(app) == []
    assert list(app.settings.paths.images.iterdir()) == []


def test_delete_refused_while_a_profile_uses_it(app: Corral, tiny: Image) -> None:
    app.change(lambda inv: ops.add_profile(inv, {"name": "compute", "image": "tiny"}))
    result = corral("image", "delete", "tiny")
    assert result.exit_code == 1
    assert "used by profile compute" in result.output
    assert corral("image", "rename", "tiny", "other").exit_code == 1
    assert [i.name for i in api.list_images(app)] == ["tiny"]


def test_user_errors_exit_1(corral_home: Path) -> None:
    result = corral("image", "import", "ftp://x/y.tar", "x")
    assert result.exit_code == 1 and "unknown source type 'ftp'" in result.output
    assert corral("image", "show", "nope").exit_code == 1


@pytest.mark.usefixtures("root_only")
def test_exec_and_pack(tiny: Image) -> None:
    result = corral("image", "exec", "tiny", "--", "uname", "-r")
    assert result.exit_code == 0
    packed = corral("image", "pack", "tiny", "--boot-url", "http://127.0.0.1:8080", "-o", "json")
    assert packed.exit_code == 0, packed.output
    data = json.loads(packed.output[packed.output.index("{") :])
    assert data["kernel_version"] == tiny.kernel.version  # type: ignore[union-attr]


def test_build_names_its_presets_and_refuses_an_unknown_one(app: Corral) -> None:
    helped = corral("image", "build", "--help")
    assert helped.exit_code == 0
    for name in ("minimal", "server", "slurm", "--include", "--exclude"):
        assert name in helped.output
    refused = corral("image", "build", "x", "--debootstrap", "bookworm", "--preset", "huge")
    assert refused.exit_code == 2 and "'huge' is not one of" in refused.output
    assert api.list_images(app) == []


def test_show_prints_the_ram_a_stateless_node_needs_once_packed(tiny: Image) -> None:
    assert "ram_needed" not in json.loads(corral("image", "show", "tiny", "-o", "json").output)
    assert corral("image", "pack", "tiny", "--boot-url", "http://10.0.0.1:8080").exit_code == 0
    shown = json.loads(corral("image", "show", "tiny", "-o", "json").output)
    packed = shown["artifacts"]["image"]["size"]
    assert shown["ram_needed"] == shown["size"] + shown["files"] * 2048 + packed + (64 << 20)
    table = corral("image", "show", "tiny").output
    assert "ram needed (stateless)" in table
    # each artifact by its kind: the initramfs and its second part are both cpio+zstd
    tools = shown["artifacts"]["initramfs"]["tools"]["sha256"]
    assert "initramfs tools (cpio+zstd)" in table and tools[:32] in table, table
