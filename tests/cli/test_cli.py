"""The `corral` command for networks, profiles, nodes, apply and export."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Result, Run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster.yaml"
PROV = ["network", "add", "prov", "--cidr", "10.77.0.0/24", "--gateway", "10.77.0.1"]
PROV += ["--dynamic-range", "10.77.0.200-10.77.0.250"]


def ok(result: Result) -> Result:
    assert result.code == 0, (result.out, result.err)
    return result


def setup_compute(corral: Run) -> None:
    ok(corral(*PROV))
    ok(corral("profile", "add", "compute", "--kernel-args", "console=ttyS0,115200 quiet",
              "--network", "prov", "--image", "rocky9"))  # fmt: skip


def node_json(corral: Run, names: str | None = None) -> list[dict[str, object]]:
    args = ["node", "list", "-o", "json"] + ([names] if names else [])
    data: list[dict[str, object]] = json.loads(ok(corral(*args)).out)
    return data


def ip_of(node: dict[str, object]) -> str:
    ifaces = node["interfaces"]
    assert isinstance(ifaces, list)
    return str(ifaces[0]["ip"])


def test_issue_spellings_and_allocation_in_order(corral: Run) -> None:
    setup_compute(corral)
    result = ok(corral("node", "add", "n[001-064]", "--profile", "compute"))
    assert "64 node(s) created: n[001-064]" in result.err
    nodes = node_json(corral)
    assert [n["name"] for n in nodes] == [f"n{i:03d}" for i in range(1, 65)]
    assert [ip_of(n) for n in nodes] == [f"10.77.0.{i}" for i in range(2, 66)]
    ok(corral("node", "set", "n001", "--mac", "52:54:00:AB:CD:01", "--ip", "10.77.0.100"))
    ok(corral("profile", "add", "gpu", "--kernel-args", "nvidia-drm.modeset=1"))
    ok(corral("node", "set", "n[002-003]", "--profile", "compute,gpu", "--kernel-args", "x=1"))
    n001, n002 = node_json(corral, "n[001-002]")
    assert n001["interfaces"] == [
        {"network": "prov", "mac": "52:54:00:ab:cd:01", "ip": "10.77.0.100"}
    ]
    assert n002["profiles"] == ["compute", "gpu"] and n002["kernel_args"] == ["x=1"]
    shown = json.loads(ok(corral("node", "show", "n002", "-o", "json")).out)
    assert shown["effective"]["kernel_args"] == {
        "value": ["console=ttyS0,115200", "quiet", "nvidia-drm.modeset=1", "x=1"],
        "origin": "profile:compute,profile:gpu,node",
    }
    # the next node takes the lowest free address
    ok(corral("node", "add", "n065", "--profile", "compute"))
    assert ip_of(node_json(corral, "n065")[0]) == "10.77.0.2"


def test_node_add_with_mac_and_ip(corral: Run) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "login1", "--profile", "compute", "--mac", "52:54:00:00:00:09",
              "--ip", "10.77.0.9"))  # fmt: skip
    assert node_json(corral)[0]["interfaces"] == [
        {"network": "prov", "mac": "52:54:00:00:00:09", "ip": "10.77.0.9"}
    ]


@pytest.mark.parametrize("noun", ["network", "profile", "node"])
@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_list_and_show_formats(corral: Run, noun: str, fmt: str) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "n[1-2]", "--profile", "compute"))
    name = {"network": "prov", "profile": "compute", "node": "n1"}[noun]
    listed = ok(corral(noun, "list", "-o", fmt)).out
    shown = ok(corral(noun, "show", name, "-o", fmt)).out
    if fmt == "json":
        assert json.loads(listed)[0]["name"] == name
        assert json.loads(shown)["name"] == name
    elif fmt == "yaml":
        assert yaml.safe_load(listed)[0]["name"] == name
        assert yaml.safe_load(shown)["name"] == name
    else:
        assert "NAME" in listed and name in listed
        assert name in shown
        with pytest.raises(json.JSONDecodeError):
            json.loads(listed)


def test_node_show_prints_origins(corral: Run) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "n1", "--profile", "compute", "--image", "custom"))
    table = ok(corral("node", "show", "n1")).out
    rows = {line.split("│")[0].strip(): line for line in table.splitlines() if "│" in line}
    assert (
        "profile:compute" in rows["kernel_args"] and "console=ttyS0,115200" in rows["kernel_args"]
    )
    assert rows["image"].rstrip().endswith("node") and "custom" in rows["image"]
    assert "profile:compute" in rows["networks"]
    data = yaml.safe_load(ok(corral("node", "show", "n1", "-o", "yaml")).out)
    assert data["effective"]["image"] == {"value": "custom", "origin": "node"}


def test_exit_codes(corral: Run) -> None:
    setup_compute(corral)
    assert corral("node", "add").code == 2  # missing argument
    assert corral("node", "list", "-o", "xml").code == 2  # bad choice
    assert corral("network", "add", "x").code == 2  # --cidr required
    assert corral("frobnicate").code == 2
    err = corral("node", "show", "ghost")
    assert err.code == 1
    assert err.error_line == "error: node 'ghost' does not exist (see 'corral node list')"
    assert ok(corral("--version")).out.startswith("corral, version")


def test_node_switch_options_name_the_switch_map(corral: Run) -> None:
    setup_compute(corral)
    err = corral("node", "add", "n1", "--profile", "compute", "--switch", "leaf1")
    assert err.code == 2
    assert "corral switch map SWITCH PORT NODE" in err.err
    assert ok(corral("node", "list", "-o", "json")).out.strip() == "[]"


def export(corral: Run, home: Path | None = None) -> str:
    return ok(corral("export", home_=home)).out


def test_export_apply_export_is_byte_identical(corral: Run, tmp_path: Path) -> None:
    ok(corral("apply", "-f", str(EXAMPLE)))
    ok(corral("profile", "set", "compute", "--bmc-password-prompt", input="hunter2\nhunter2\n"))
    ok(
        corral(
            "node", "add", "rack[1-2]-n[01-03]", "--profile", "default,compute", "--tag", "rack=r1"
        )
    )
    first = export(corral)
    assert "hunter2" not in first and "password" not in first
    assert first == export(corral)  # deterministic
    exported = tmp_path / "export.yaml"
    exported.write_text(first)
    fresh = tmp_path / "fresh"
    ok(corral("apply", "-f", str(exported), home_=fresh))
    assert export(corral, fresh) == first
    # JSON too
    as_json = ok(corral("export", "-o", "json")).out
    (tmp_path / "export.json").write_text(as_json)
    ok(corral("apply", "-f", str(tmp_path / "export.json"), home_=tmp_path / "fresh2"))
    assert export(corral, tmp_path / "fresh2") == first


def test_example_applies_and_reapplies_without_changes(corral: Run) -> None:
    result = ok(corral("apply", "-f", str(EXAMPLE)))
    assert "+ node n004" in result.out and "+ node gpu02" in result.out
    nodes = {n["name"]: n for n in node_json(corral)}
    assert sorted(nodes) == ["gpu01", "gpu02", "n001", "n002", "n003", "n004"]
    assert [ip_of(nodes[f"n00{i}"]) for i in range(1, 5)] == [f"10.77.0.{i}" for i in range(2, 6)]
    again = ok(corral("apply", "-f", str(EXAMPLE)))
    assert again.out == "" and "no changes" in again.err
    gpu = json.loads(ok(corral("node", "show", "gpu01", "-o", "json")).out)["effective"]
    assert gpu["power.driver"] == {"value": "redfish", "origin": "profile:gpu"}
    assert gpu["power.address"] == {"value": "10.78.0.101", "origin": "node"}
    assert gpu["image"]["value"] == "rocky9"


def test_apply_dry_run_changes_nothing(corral: Run, tmp_path: Path) -> None:
    setup_compute(corral)
    before = export(corral)
    result = ok(corral("apply", "--dry-run", "-f", str(EXAMPLE)))
    assert "+ network ipmi" in result.out and "~ network prov" in result.out
    assert "dry run, nothing would be applied" in result.err
    assert export(corral) == before


def test_apply_prune_deletes(corral: Run, tmp_path: Path) -> None:
    ok(corral("apply", "-f", str(EXAMPLE)))
    ok(corral("node", "add", "extra1", "--profile", "default"))
    ok(corral("apply", "-f", str(EXAMPLE)))
    assert "extra1" in export(corral)
    result = ok(corral("apply", "--prune", "-f", str(EXAMPLE)))
    assert "- node extra1" in result.out
    assert "extra1" not in export(corral)


def test_apply_from_stdin(corral: Run) -> None:
    ok(corral("apply", "-f", "-", input=EXAMPLE.read_text()))
    assert len(node_json(corral)) == 6


# --- bad input: non-zero exit, one clear line, the store unchanged ------------------------

BAD_FILES = {
    "malformed": ("networks:\n- name: prov\n  cidr: [10.0.0.0/24\n", r"bad.yaml:4: malformed YAML"),
    "unknown key": (
        "networks:\n- name: prov\n  cidr: 10.0.0.0/24\n  colour: red\n",
        r"bad.yaml:4: networks.0.colour: Extra inputs are not permitted",
    ),
    "bad cidr": ("networks:\n- name: prov\n  cidr: 10.0.0.0/33\n", r"bad.yaml:3: networks.0.cidr:"),
    "bad name": ("profiles:\n- name: Bad_Name\n", r"bad.yaml:2: profiles.0.name: .*'Bad_Name'"),
    "duplicate mac": (
        EXAMPLE.read_text().replace("mac: 52:54:00:a0:00:02", "mac: 52:54:00:a0:00:01"),
        r"node gpu0[12]: interfaces\[0\].mac 52:54:00:a0:00:01 is already used by node gpu0[12]",
    ),
    "removed switch fields": (
        "nodes:\n- name: n9\n  switch: leaf1\n  switch_port: '12'\n",
        r"bad.yaml:2: nodes.0: .*corral switch map SWITCH PORT NODE",
    ),
    "range runs out": (
        "networks:\n- {name: t, cidr: 10.0.0.0/29}\nprofiles:\n- {name: p, networks: [t]}\n"
        "nodes:\n- {name: 'x[1-9]', profiles: [p]}\n",
        r"network t \(10.0.0.0/29\) has 6 free addresses, 9 needed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files(corral: Run, tmp_path: Path, case: str) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "n[1-3]", "--profile", "compute"))
    before = export(corral)
    text, message = BAD_FILES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = corral("apply", "-f", str(bad))
    assert result.code == 1
    line = result.error_line
    assert line.startswith("error: ")
    assert re.search(message, line.replace(str(tmp_path) + "/", "")), line
    assert export(corral) == before


BAD_COMMANDS = {
    "invalid cidr": (
        ["network", "add", "other", "--cidr", "10.1.0.0/33"],
        r"network other: cidr: .*\(got '10.1.0.0/33'\)",
    ),
    "gateway outside": (
        ["network", "add", "other", "--cidr", "10.1.0.0/24", "--gateway", "10.2.0.1"],
        r"gateway 10.2.0.1 is outside the network 10.1.0.0/24",
    ),
    "invalid mac": (
        ["node", "set", "n2", "--mac", "52:54:00:zz:00:01"],
        r"mac: '52:54:00:zz:00:01' is not a MAC address",
    ),
    "invalid ip": (["node", "set", "n2", "--ip", "10.77.0.300"], r"--ip '10.77.0.300' is not"),
    "ip outside": (
        ["node", "add", "n9", "--profile", "compute", "--ip", "10.9.9.9"],
        r"outside network prov",
    ),
    "invalid name": (
        ["node", "add", "bad_name", "--profile", "compute"],
        r"'bad_name' is not a DNS-safe",
    ),
    "bad range": (
        ["node", "add", "n[3-1]", "--profile", "compute"],
        r"'n\[3-1\]' is not a valid hostlist",
    ),
    "duplicate mac": (
        ["node", "set", "n2", "--mac", "52:54:00:00:00:01"],
        r"mac 52:54:00:00:00:01 is already used by node n1",
    ),
    "duplicate ip": (
        ["node", "set", "n2", "--ip", "10.77.0.2"],
        r"ip 10.77.0.2 is already used by node n1",
    ),
    "duplicate name": (["node", "add", "n1", "--profile", "compute"], r"node n1 already exists"),
    "out of addresses": (
        ["node", "add", "m[001-300]", "--profile", "compute"],
        r"network prov \(10.77.0.0/24\) has 199 free addresses, 300 needed",
    ),
    "unknown profile": (
        ["node", "add", "m1", "--profile", "nope"],
        r"profile 'nope' does not exist",
    ),
    "profile in use": (["profile", "delete", "compute"], r"profile compute is used by nodes n1"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_commands(corral: Run, case: str) -> None:
    setup_compute(corral)
    ok(corral("node", "add", "n1", "--profile", "compute", "--mac", "52:54:00:00:00:01"))
    ok(corral("node", "add", "n[2-3]", "--profile", "compute"))
    before = export(corral)
    args, message = BAD_COMMANDS[case]
    result = corral(*args)
    assert result.code == 1, (result.out, result.err)
    assert re.search(message, result.error_line), result.error_line
    assert export(corral) == before


# --- the real console script --------------------------------------------------------------


def test_console_script_end_to_end(corral_proc: Run, tmp_path: Path) -> None:
    r = corral_proc("network", "add", "prov", "--cidr", "10.77.0.0/24", "--gateway", "10.77.0.1",
                    "--dynamic-range", "10.77.0.200-10.77.0.250")  # fmt: skip
    assert r.code == 0, r.err
    r = corral_proc("profile", "add", "compute", "--kernel-args", "console=ttyS0 quiet",
                    "--network", "prov", "--image", "rocky9")  # fmt: skip
    assert r.code == 0, r.err
    assert corral_proc("node", "add", "n[001-064]", "--profile", "compute").code == 0
    usage = corral_proc("node", "add")
    assert usage.code == 2 and "Missing argument" in usage.err
    bad_file = tmp_path / "c.yaml"
    bad_file.write_text("networks:\n- name: prov\n  cidr: 10.0.0.0/24\n  colour: red\n")
    r = corral_proc("apply", "-f", str(bad_file))
    assert r.code == 1
    assert r.error_line == (
        f"error: {bad_file}:4: networks.0.colour: Extra inputs are not permitted (got 'red')"
    )
    first = corral_proc("export")
    assert first.code == 0 and "10.0.0.0/24" not in first.out
    nodes = yaml.safe_load(first.out)["nodes"]
    assert [ip_of(n) for n in nodes] == [f"10.77.0.{i}" for i in range(2, 66)]
    path = tmp_path / "export.yaml"
    path.write_text(first.out)
    fresh = tmp_path / "fresh"
    assert corral_proc("apply", "-f", str(path), home_=fresh).code == 0
    assert corral_proc("export", home_=fresh).out == first.out


def test_cli_start_up_does_not_load_the_services() -> None:
    """Every command pays for what `corral` imports at start-up: aiohttp's server is
    only for `corral serve`."""
    code = (
        "import sys; from corral.cli.main import register; register(); "
        "print(sorted(m for m in ('aiohttp.web', 'corral.services.serve', 'alembic') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_serve_default_port_matches_the_service() -> None:
    from corral.cli.serve import serve
    from corral.config import DEFAULT_HTTP_PORT
    from corral.lab.lab import SERVER_URL
    from corral.services.serve import ServeOptions

    option = next(p for p in serve.params if p.name == "http_port")
    assert option.default == DEFAULT_HTTP_PORT == 9480
    assert ServeOptions.__dataclass_fields__["http_port"].default == DEFAULT_HTTP_PORT
    assert SERVER_URL.endswith(f":{DEFAULT_HTTP_PORT}")
