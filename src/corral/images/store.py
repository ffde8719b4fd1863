"""The content-addressed artifact store: `$CORRAL_HOME/artifacts/<sha256>`.

Every artifact is written to a hidden temporary file in the same directory,
hashed as it is written, then renamed to its sha256: a reader never sees a
half-written artifact, and a failure (a full disk) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from corral.images.errors import ImageError
from corral.images.records import ArtifactFile, artifact_path


class ArtifactWriter:
    """A binary file being written into the store; `sha256` and `size` track it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        self.tmp = Path(name)
        self.fh = os.fdopen(fd, "wb", buffering=0)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview, /) -> int:
        self.hash.update(data)
        self.fh.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def commit(self, home: Path, fmt: str) -> ArtifactFile:
        self.fh.close()
        os.chmod(self.tmp, 0o644)
        digest = self.hash.hexdigest()
        os.replace(self.tmp, artifact_path(home, digest))
        return ArtifactFile(sha256=digest, size=self.size, format=fmt)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def new_artifact(home: Path) -> Iterator[ArtifactWriter]:
    """An ArtifactWriter whose temporary file is removed unless committed."""
    writer = ArtifactWriter(home / "artifacts")
    try:
        yield writer
    except OSError as exc:
        writer.discard()
        raise ImageError(f"cannot write artifact under {home / 'artifacts'}: {exc}") from exc
    except BaseException:
        writer.discard()
        raise
    finally:
        writer.fh.close()


def store_bytes(home: Path, data: bytes, fmt: str) -> ArtifactFile:
    with new_artifact(home) as out:
        out.write(data)
        return out.commit(home, fmt)


def store_file(home: Path, source: Path, fmt: str) -> ArtifactFile:
    with new_artifact(home) as out, source.open("rb", buffering=0) as fh:
        while block := fh.read(1 << 20):
            out.write(block)
        return out.commit(home, fmt)
