"""Where corral keeps its state: read once at the entry point, then passed down.

Everything lives under `$CORRAL_HOME` (default /var/lib/corral): the database,
images, artifacts, the admin token, the lab. One directory to back up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("/var/lib/corral")


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


@dataclass(frozen=True)
class Settings:
    paths: Paths
    database_url: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("CORRAL_HOME") or DEFAULT_HOME)
        paths = Paths(home)
        url = env.get("CORRAL_DATABASE_URL") or f"sqlite:///{paths.database}"
        return cls(paths=paths, database_url=url)
