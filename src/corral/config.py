"""Where corral keeps its state: read once at the entry point, then passed down.

Everything lives under `$CORRAL_HOME` (default /var/lib/corral): the database,
images, artifacts, the admin token, the lab. One directory to back up, except
that the key sealing the database's secrets may live elsewhere
(`CORRAL_SECRET_KEY_FILE`), so that a copy of the database alone reveals none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("/var/lib/corral")
# corral's HTTP port (REST API, boot scripts, artifacts, tracker): `corral serve
# --http-port` defaults to it, and the lab serves on it. Defined here, in a module
# with no heavy imports, so the CLI reads it without loading the services.
DEFAULT_HTTP_PORT = 9480
# HTTPS (the API and the node endpoints, with the cluster CA's certificate)
DEFAULT_HTTPS_PORT = 9443


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def database(self) -> Path:
        return self.home / "corral.db"

    @property
    def token(self) -> Path:
        return self.home / "admin.token"

    @property
    def secret_key(self) -> Path:
        return self.home / "secret.key"

    @property
    def pki(self) -> Path:
        """The cluster CA, the SSH CA and the image-signing key (corral.pki)."""
        return self.home / "pki"

    @property
    def images(self) -> Path:
        return self.home / "images"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def tftp_root(self) -> Path:
        return self.home / "tftp"

    @property
    def lab(self) -> Path:
        return self.home / "lab"

    @property
    def ssh(self) -> Path:
        """The admin's SSH key pair and the cluster's known_hosts (directory 0700)."""
        return self.home / "ssh"

    @property
    def admin_ssh_key(self) -> Path:
        return self.ssh / "admin_key"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"


@dataclass(frozen=True)
class Settings:
    paths: Paths
    database_url: str
    # the key that seals BMC passwords in the database (default CORRAL_HOME/secret.key)
    key_file: Path | None = None

    @property
    def secret_key_file(self) -> Path:
        return self.key_file or self.paths.secret_key

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("CORRAL_HOME") or DEFAULT_HOME)
        paths = Paths(home)
        url = env.get("CORRAL_DATABASE_URL") or f"sqlite:///{paths.database}"
        key = env.get("CORRAL_SECRET_KEY_FILE")
        return cls(paths=paths, database_url=url, key_file=Path(key) if key else None)
