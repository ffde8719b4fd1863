"""Named API tokens with roles: each role boundary, revocation, hashing, the audit trail.

A real `corral serve` on loopback; tokens are made with the CLI, as an admin
would, and used over HTTP.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from corral.cli.main import cli, register
from corral.client import ClientError, RemoteActions
from corral.store.audit import API_EVENT
from tests.services.conftest import LiveServer


def corral(*args: str, input: str | None = None) -> tuple[int, str, str]:
    register()
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def make_token(name: str, role: str) -> str:
    code, out, err = corral("token", "create", name, "--role", role)
    assert code == 0, err
    return out.strip()


def call(
    server: LiveServer, token: str | None, method: str, path: str, body: object = None
) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def seeded(live_server: LiveServer) -> LiveServer:
    api = RemoteActions(live_server.url, live_server.token)
    api.add_network({"name": "prov", "cidr": "10.77.0.0/24"})
    api.add_profile({"name": "rack", "networks": ["prov"], "power": {"driver": "manual"}})
    api.add_nodes(["n1"], {"profiles": ["rack"]})
    return live_server


READ = ("GET", "/api/v1/nodes", None)
POWER = ("POST", "/api/v1/power/status", {"names": "n1"})
CHANGE = ("POST", "/api/v1/profiles", {"name": "extra"})
TOKENS = ("GET", "/api/v1/tokens", None)
CALLS = {"read": READ, "power": POWER, "change": CHANGE, "tokens": TOKENS}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("read-only", {"read"}),
        ("operator", {"read", "power"}),
        ("admin", {"read", "power", "change", "tokens"}),
    ],
)
def test_each_role_may_do_what_it_allows_and_nothing_more(
    seeded: LiveServer, role: str, allowed: set[str]
) -> None:
    secret = make_token("t-" + role, role)
    for what, (method, path, body) in CALLS.items():
        status, answer = call(seeded, secret, method, path, body)
        if what in allowed:
            assert status in (200, 201), (role, path, answer)
        else:
            assert status == 403, (role, path, answer)
            assert f"has role {role}" in str(answer)


def test_the_admin_token_file_stays_an_admin_token(seeded: LiveServer) -> None:
    status, _ = call(seeded, seeded.token, *CHANGE)
    assert status == 201
    status, _ = call(seeded, seeded.token, "POST", "/api/v1/tokens", {"name": "x", "role": "admin"})
    assert status == 201


def test_a_revoked_or_unknown_token_is_refused(seeded: LiveServer) -> None:
    secret = make_token("ci", "read-only")
    assert call(seeded, secret, *READ)[0] == 200
    code, _, err = corral("token", "revoke", "ci")
    assert code == 0, err
    assert call(seeded, secret, *READ)[0] == 401
    assert call(seeded, secret + "x", *READ)[0] == 401
    assert call(seeded, "corral_" + "A" * 43, *READ)[0] == 401
    assert call(seeded, "x" * 1_000, *READ)[0] == 401


def test_secrets_are_shown_once_and_stored_only_as_hashes(seeded: LiveServer) -> None:
    secret = make_token("ci", "operator")
    code, out, _ = corral("token", "list", "-o", "json")
    assert code == 0
    listed = json.loads(out)
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "operator")]
    assert secret not in out
    code, table, _ = corral("token", "list")
    assert "ci" in table and secret not in table
    db = seeded.corral.settings.paths.database
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and secret.removeprefix("corral_") not in dump
    assert make_token("ci2", "read-only") != secret
    code, _, err = corral("token", "create", "ci", "--role", "admin")
    assert code == 1 and "already exists" in err


def test_every_change_is_an_event_naming_the_token(seeded: LiveServer) -> None:
    operator = make_token("night-shift", "operator")
    reader = make_token("dashboard", "read-only")
    call(seeded, operator, *POWER)
    call(seeded, operator, *CHANGE)  # refused: recorded all the same
    call(seeded, reader, *READ)  # reading is not an action
    call(seeded, seeded.token, *CHANGE)
    events = RemoteActions(seeded.url, seeded.token).events(since=0)
    actions = [e["data"] for e in events if e["kind"] == API_EVENT]
    seen = [(a["token"], a["role"], a["method"], a["path"], a["status"]) for a in actions]
    assert ("night-shift", "operator", "POST", "/api/v1/power/status", 200) in seen
    assert ("night-shift", "operator", "POST", "/api/v1/profiles", 403) in seen
    assert ("admin", "admin", "POST", "/api/v1/profiles", 201) in seen
    assert not any(s[0] == "dashboard" for s in seen)


def test_the_cli_with_a_read_only_token_gets_one_line(seeded: LiveServer, tmp_path: Path) -> None:
    reader = make_token("viewer", "read-only")
    remote = ("--server", seeded.url, "--token", reader)
    code, out, _ = corral(*remote, "node", "list", "-o", "json")
    assert code == 0 and json.loads(out)[0]["name"] == "n1"
    code, _, err = corral(*remote, "node", "add", "n2", "--profile", "rack")
    assert code == 1
    assert err.strip().count("\n") == 0 and "has role read-only" in err
    with pytest.raises(ClientError, match="needs admin"):
        RemoteActions(seeded.url, reader).create_token("mine", "admin")


def test_tokens_are_managed_through_server_too(seeded: LiveServer) -> None:
    remote = ("--server", seeded.url, "--token", seeded.token)
    code, out, err = corral(*remote, "token", "create", "remote-ci", "--role", "operator")
    assert code == 0, err
    secret = out.strip()
    assert call(seeded, secret, *POWER)[0] == 200
    code, out, _ = corral(*remote, "token", "list", "-o", "json")
    assert [t["name"] for t in json.loads(out)] == ["remote-ci"]
    assert corral(*remote, "token", "revoke", "remote-ci")[0] == 0
    assert call(seeded, secret, *POWER)[0] == 401


def test_an_unknown_role_is_a_usage_error() -> None:
    code, _, err = corral("token", "create", "x", "--role", "root")
    assert code == 2 and "read-only" in err


def test_the_token_can_come_from_a_file_instead_of_argv(seeded: LiveServer, tmp_path: Path) -> None:
    reader = make_token("from-file", "read-only")
    path = tmp_path / "token"
    path.write_text(reader + "\n")
    code, out, err = corral("--server", seeded.url, "--token-file", str(path), "node", "list")
    assert code == 0, err
    assert "n1" in out
    listed = RemoteActions(seeded.url, seeded.token).tokens()
    assert [t["name"] for t in listed if t["last_used"]] == ["from-file"]


def test_changes_made_by_the_cli_on_the_server_are_recorded_with_the_user(
    seeded: LiveServer,
) -> None:
    assert corral("node", "add", "n[2-3]", "--profile", "rack")[0] == 0
    assert corral("node", "delete", "n9")[0] == 1  # refused: recorded as failed
    assert corral("node", "list")[0] == 0  # reading is not recorded
    events = RemoteActions(seeded.url, seeded.token).events(since=0)
    local = [e["data"] for e in events if e["kind"] == API_EVENT and e["data"]["role"] == "local"]
    user = local[0]["token"]
    assert user.startswith("local:")
    assert [(a["token"], a["method"], a["path"], a["status"]) for a in local] == [
        (user, "CLI", "add_nodes n[2-3]", 0),
        (user, "CLI", "delete_nodes n9", 1),
    ]
