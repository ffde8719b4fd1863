"""The cluster's keys: a CA for TLS, an SSH CA for host certificates, an image-signing key.

`corral init` makes them under CORRAL_HOME/pki (private keys 0600, never
exported: no command prints them, `corral export` does not read this folder).
What leaves the server is public: the CA certificate (`ca.pem`, which the
CLI, the initramfs and the node agent trust), the SSH CA's public key (the one
`@cert-authority` line users put in known_hosts), and the image-signing
public key (`signing.pub`, which the initramfs carries to check images).

Everything here is a function of a directory and the `cryptography` library;
it imports nothing of corral, so every layer above may use it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397  # browsers refuse longer server certificates
RENEW_BEFORE = dt.timedelta(days=30)
SSH_CERT_DAYS = 3650


class PkiError(Exception):
    """A key or certificate is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class Pki:
    """The files of the cluster's keys, under one directory (CORRAL_HOME/pki)."""

    root: Path

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def signing_key(self) -> Path:
        return self.root / "signing.key"

    @property
    def signing_pub(self) -> Path:
        return self.root / "signing.pub"

    @property
    def ssh_ca_key(self) -> Path:
        return self.root / "ssh_ca"

    @property
    def ssh_ca_pub(self) -> Path:
        return self.root / "ssh_ca.pub"

    def exists(self) -> bool:
        return self.ca_cert.is_file() and self.ca_key.is_file()


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret: created 0600 (never readable by others for a moment), then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _pem_private(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_private(path: Path) -> object:
    if not path.is_file():
        raise PkiError(f"{path} is missing: run `corral init`")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(mode & 0o700)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def ensure(pki: Pki, cluster: str = "corral") -> list[Path]:
    """Make whatever of the CA, the signing key and the SSH CA is missing; answer what was made."""
    made: list[Path] = []
    now = dt.datetime.now(dt.UTC)
    if not pki.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster} cluster CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(pki.ca_key, _pem_private(key))
        _write_public(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
        made += [pki.ca_key, pki.ca_cert]
    if not pki.signing_key.is_file():
        skey = ed25519.Ed25519PrivateKey.generate()
        _write_private(pki.signing_key, _pem_private(skey))
        made.append(pki.signing_key)
    if not pki.signing_pub.is_file():
        skey = signing_private(pki)
        pub = skey.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_public(pki.signing_pub, pub)
        made.append(pki.signing_pub)
    if not pki.ssh_ca_key.is_file():
        sshkey = ed25519.Ed25519PrivateKey.generate()
        body = sshkey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        _write_private(pki.ssh_ca_key, body)
        made.append(pki.ssh_ca_key)
    if not pki.ssh_ca_pub.is_file():
        _write_public(pki.ssh_ca_pub, ssh_ca_public_line(pki).encode() + b"\n")
        made.append(pki.ssh_ca_pub)
    return made


def _ca(pki: Pki) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _load_private(pki.ca_key)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{pki.ca_key} is not corral's CA key")
    return key, x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def server_names(cert_path: Path) -> set[str]:
    """The DNS names and addresses a server certificate is good for."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def server_certificate(pki: Pki, names: Iterable[str]) -> bool:
    """Make sure the server certificate names all of `names` and is not about to expire.

    Issues (or re-issues, keeping the names it had) when it does not; answers
    whether it did. `corral serve` calls it with its --advertise and
    --interface addresses, so a new address never needs a manual step.
    """
    wanted = set(names) | {"localhost", "127.0.0.1"}
    now = dt.datetime.now(dt.UTC)
    if pki.server_cert.is_file() and pki.server_key.is_file():
        cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
        have = server_names(pki.server_cert)
        fresh = cert.not_valid_after_utc - now > RENEW_BEFORE
        if wanted <= have and fresh:
            return False
        wanted |= have
    ca_key, ca_cert = _ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    first = sorted(wanted)[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(sorted(wanted))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(pki.server_key, _pem_private(key))
    _write_public(pki.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return True


def signing_private(pki: Pki) -> ed25519.Ed25519PrivateKey:
    key = _load_private(pki.signing_key)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PkiError(f"{pki.signing_key} is not an ed25519 key")
    return key


def image_statement(sha256: str, info_hash: str) -> bytes:
    """What an image signature covers: the image's sha256 and its torrent's info-hash.

    One line of text, so that the initramfs can rebuild it with printf and
    check it with `openssl pkeyutl -verify -rawin`.
    """
    return f"corral-image-v1 sha256={sha256} btih={info_hash}\n".encode()


def sign_image(pki: Pki, sha256: str, info_hash: str) -> bytes:
    """The raw 64-byte ed25519 signature of `image_statement`."""
    return signing_private(pki).sign(image_statement(sha256, info_hash))


def verify_image(public_pem: bytes, sha256: str, info_hash: str, signature: bytes) -> bool:
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return False
    try:
        key.verify(signature, image_statement(sha256, info_hash))
    except InvalidSignature:
        return False
    return True


def _ssh_ca(pki: Pki) -> ed25519.Ed25519PrivateKey:
    if not pki.ssh_ca_key.is_file():
        raise PkiError(f"{pki.ssh_ca_key} is missing: run `corral init`")
    key = serialization.load_ssh_private_key(pki.ssh_ca_key.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PkiError(f"{pki.ssh_ca_key} is not an ed25519 key")
    return key


def ssh_ca_public_line(pki: Pki) -> str:
    """The SSH CA's public key as one OpenSSH line (`ssh-ed25519 AAAA... corral-ssh-ca`)."""
    pub = (
        _ssh_ca(pki)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    return pub.decode() + " corral-ssh-ca"


def known_hosts_line(pki: Pki, pattern: str = "*") -> str:
    """The one known_hosts line that trusts every node's host certificate."""
    return f"@cert-authority {pattern} {ssh_ca_public_line(pki)}"


def sign_host_key(pki: Pki, public_line: str, principals: Iterable[str], key_id: str) -> str:
    """An OpenSSH host certificate (one line) for `public_line`, valid for `principals`."""
    public = serialization.load_ssh_public_identity(public_line.encode())
    if isinstance(public, serialization.SSHCertificate):
        raise PkiError("expected a public key, got a certificate")
    now = dt.datetime.now(dt.UTC)
    cert = (
        serialization.SSHCertificateBuilder()
        .public_key(public)  # type: ignore[arg-type]
        .type(serialization.SSHCertificateType.HOST)
        .key_id(key_id.encode())
        .valid_principals([p.encode() for p in dict.fromkeys(principals) if p])
        .valid_after(int((now - dt.timedelta(minutes=5)).timestamp()))
        .valid_before(int((now + dt.timedelta(days=SSH_CERT_DAYS)).timestamp()))
        .serial(int.from_bytes(os.urandom(8), "big"))
        .sign(_ssh_ca(pki))
    )
    return cert.public_bytes().decode()
