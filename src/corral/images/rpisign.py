"""The site's Raspberry Pi boot-signing key, and `boot.sig` for a `boot.img`.

HTTP boot (bootloader mode 7) loads `boot.img` and checks `boot.sig`
against the public key written into each board's EEPROM. corral keeps one
RSA-2048 key per site in `$CORRAL_HOME/rpi-boot.key` (0600, made on first
use); `corral rpi eeprom-config --http` prints its public half.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

KEY_FILE = "rpi-boot.key"
KEY_BITS = 2048  # the bootloader verifies RSA-2048 only


def site_key(home: Path) -> rsa.RSAPrivateKey:
    """The site key, created (0600, by atomic rename) if there is none yet."""
    path = home / KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        tmp.replace(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size != KEY_BITS:
        raise ValueError(f"{path} is not an RSA-2048 private key: remove it to make a new one")
    return loaded


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def boot_sig(digest_hex: str, timestamp: int, signature: bytes) -> str:
    """A `boot.sig` as the bootloader reads it (rpi-eeprom-digest's format).

    Three lines: the sha256 of boot.img in hex, `ts: <unix time>`, and
    `rsa2048: <hex>`, an RSA-2048 PKCS#1 v1.5 signature of boot.img with SHA-256.
    """
    return f"{digest_hex}\nts: {timestamp}\nrsa2048: {signature.hex()}\n"


def sign_boot_image(image: bytes, key: rsa.RSAPrivateKey, now: float | None = None) -> str:
    """The `boot.sig` text for `image` (the bytes of a boot.img)."""
    return _sign_digest(hashlib.sha256(image), key, now)


def sign_boot_file(path: Path, key: rsa.RSAPrivateKey, now: float | None = None) -> str:
    """The `boot.sig` text for the boot.img at `path`, read in chunks (it holds a kernel)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return _sign_digest(digest, key, now)


def _sign_digest(digest: hashlib._Hash, key: rsa.RSAPrivateKey, now: float | None) -> str:
    """Sign a finished sha256 (as `openssl dgst -sha256 -sign` signs the whole file)."""
    signature = key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    stamp = int(time.time() if now is None else now)
    return boot_sig(digest.hexdigest(), stamp, signature)
