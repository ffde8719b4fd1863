"""Secrets at rest (issue 10, finding 8): private files, sealed BMC passwords, no argv.

Each test reads what an attacker would: the raw database rows with sqlite3,
the file modes, the output of export.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from corral.app import Corral
from corral.config import Paths, Settings
from corral.inventory.index import Inventory
from corral.store.db import MIGRATIONS, Store
from corral.store.inventory import save_inventory
from corral.store.secretbox import PREFIX
from tests.cli.conftest import Result, Run

PASSWORD = "hunter2-Secret"


def ok(result: Result) -> Result:
    assert result.code == 0, (result.out, result.err)
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def setup(corral: Run, home: Path) -> None:
    ok(corral("network", "add", "prov", "--cidr", "10.77.0.0/24"))
    ok(corral("profile", "add", "rack", "--network", "prov", "--power-driver", "ipmi"))
    ok(corral("node", "add", "n[1-2]", "--profile", "rack"))
    secret = home.parent / "pw"
    secret.write_text(PASSWORD + "\n")
    ok(corral("node", "set", "n1", "--bmc-password-file", str(secret)))


def raw_specs(home: Path) -> str:
    with sqlite3.connect(home / "corral.db") as db:
        rows = db.execute("SELECT spec FROM nodes UNION ALL SELECT spec FROM profiles").fetchall()
    return "\n".join(r[0] for r in rows)


def stored_password(home: Path, node: str = "n1", key: Path | None = None) -> str | None:
    app = Corral(Settings(Paths(home), f"sqlite:///{home / 'corral.db'}", key))
    power = app.read().effective(node).settings.power
    return None if power.password is None else power.password.get_secret_value()


def test_files_holding_secrets_are_0600_in_a_home_that_was_0755(corral: Run, home: Path) -> None:
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # whatever the umask
    init = ok(corral("init"))
    assert f"secret key: {home / 'secret.key'}" in init.out
    setup(corral, home)
    ok(corral("overlay", "render", "n1", "ssh"))  # makes the node's SSH host keys
    files = [home / n for n in ("corral.db", "admin.token", "secret.key")]
    files += [p for p in (home / "corral.db-wal", home / "corral.db-shm") if p.exists()]
    private_keys = [p for p in home.rglob("ssh_host_*_key") if p.is_file()]
    assert private_keys
    files += private_keys
    files += [home / "pki" / n for n in ("ca.key", "signing.key", "ssh_ca")]
    for path in files:
        assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"


def test_a_database_an_older_corral_left_0644_is_made_private(corral: Run, home: Path) -> None:
    home.mkdir(mode=0o755)
    ok(corral("network", "add", "prov", "--cidr", "10.77.0.0/24"))
    for name in ("corral.db", "corral.db-wal"):
        (home / name).chmod(0o644)
    ok(corral("network", "list"))
    assert mode(home / "corral.db") == 0o600
    assert mode(home / "corral.db-wal") == 0o600


def test_bmc_passwords_are_sealed_in_the_database_and_open_with_the_key(
    corral: Run, home: Path
) -> None:
    setup(corral, home)
    rows = raw_specs(home)
    assert PASSWORD not in rows
    assert PREFIX in rows
    assert stored_password(home) == PASSWORD


def test_the_key_can_live_apart_and_its_loss_is_one_clear_error(
    corral: Run, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "keys" / "corral.key"
    monkeypatch.setenv("CORRAL_SECRET_KEY_FILE", str(key))
    setup(corral, home)
    assert key.is_file() and mode(key) == 0o600
    assert not (home / "secret.key").exists()
    assert stored_password(home, key=key) == PASSWORD
    key.rename(tmp_path / "elsewhere")
    lost = corral("node", "list")
    assert lost.code == 1
    assert "key" in lost.error_line and "restore it" in lost.error_line
    (tmp_path / "other.key").write_bytes(b"x" * 10)
    monkeypatch.setenv("CORRAL_SECRET_KEY_FILE", str(tmp_path / "other.key"))
    wrong = corral("node", "list")
    assert wrong.code == 1 and "secret key" in wrong.error_line


def test_clear_text_rows_from_before_are_read_then_sealed_by_the_upgrade(home: Path) -> None:
    url = f"sqlite:///{home / 'corral.db'}"
    old = Store(url)  # a database as corral 0001 wrote it: passwords in clear JSON
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    before = Inventory()
    after = Inventory.from_cluster(
        Inventory()
        .to_cluster()
        .model_validate(
            {
                "networks": [{"name": "prov", "cidr": "10.77.0.0/24"}],
                "profiles": [{"name": "rack", "power": {"password": PASSWORD}}],
                "nodes": [{"name": "n1", "profiles": ["rack"]}],
            }
        )
    )
    with old.transaction() as conn:
        save_inventory(conn, before, after)
    old.close()
    assert PASSWORD in raw_specs(home)
    assert stored_password(home) == PASSWORD  # opening upgrades the schema and seals
    assert PASSWORD not in raw_specs(home)


def test_a_clear_row_written_after_the_upgrade_is_still_read_and_sealed_on_write(
    corral: Run, home: Path
) -> None:
    setup(corral, home)
    with sqlite3.connect(home / "corral.db") as db:
        spec = {"name": "n2", "profiles": ["rack"], "power": {"password": "plain-old"}}
        db.execute("UPDATE nodes SET spec = ? WHERE name = 'n2'", (json.dumps(spec),))
    assert stored_password(home, "n2") == "plain-old"
    ok(corral("node", "set", "n2", "--bmc-username", "root"))
    assert "plain-old" not in raw_specs(home)
    assert stored_password(home, "n2") == "plain-old"


def test_bmc_password_on_the_command_line_is_refused_saying_what_to_use(
    corral: Run, home: Path
) -> None:
    setup(corral, home)
    result = corral("node", "set", "n2", "--bmc-password", "s3cret")
    assert result.code == 2
    assert "--bmc-password-file" in result.err and "--bmc-password-env" in result.err
    assert "ps" in result.err
    assert stored_password(home, "n2") is None


@pytest.mark.parametrize("how", ["file", "stdin", "env", "prompt"])
def test_bmc_password_comes_from_a_file_stdin_the_environment_or_a_prompt(
    corral: Run, home: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(corral, home)
    source = home.parent / "pw2"
    source.write_text("from-" + how + "\n")
    args = {
        "file": (["--bmc-password-file", str(source)], None),
        "stdin": (["--bmc-password-file", "-"], "from-stdin\n"),
        "env": (["--bmc-password-env", "MY_BMC_PW"], None),
        "prompt": (["--bmc-password-prompt"], "from-prompt\nfrom-prompt\n"),
    }
    monkeypatch.setenv("MY_BMC_PW", "from-env")
    flags, given = args[how]
    result = ok(corral("node", "set", "n2", *flags, input=given))
    assert stored_password(home, "n2") == f"from-{how}"
    assert f"from-{how}" not in result.out


def test_export_and_shows_never_print_a_secret(corral: Run, home: Path) -> None:
    setup(corral, home)
    outputs = [
        ok(corral("export")).out,
        ok(corral("export", "-o", "json")).out,
        ok(corral("node", "show", "n1", "-o", "json")).out,
        ok(corral("node", "list", "-o", "yaml")).out,
        ok(corral("profile", "list", "-o", "json")).out,
    ]
    for text in outputs:
        assert PASSWORD not in text and PREFIX not in text
    assert "password" not in outputs[0]
