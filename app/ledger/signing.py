"""Ed25519 keys for audit checkpoints: loading, generating, naming, trusting.

The private key comes from AUDIT_SIGNING_KEY_FILE (a PEM file, e.g. from
`armslength audit-keygen` or `openssl genpkey -algorithm ed25519`) or AUDIT_SIGNING_KEY
(the same PEM text, or the raw 32-byte key in hex), never from the database. Trusted public
keys are the signing key's own and those listed in AUDIT_TRUSTED_KEYS (hex, separated by
commas or spaces): after a key rotation the old public key stays listed there, so old
checkpoints still verify. A key that is only in the database is never trusted.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SigningKeyError(ValueError):
    """A signing key or trusted key that cannot be read."""


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public_key_hex: str) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def verify_signature(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def parse_public_key(text: str) -> str:
    """A public key as hex: 64 hex digits, or a PEM public key (openssl pkey -pubout)."""
    text = text.strip()
    if _HEX64.match(text.lower()):
        return text.lower()
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as error:
        raise SigningKeyError("not an Ed25519 public key (64 hex digits or PEM)") from error
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("not an Ed25519 public key")
    return public_hex(key)


def _private_key(text: str, where: str) -> Ed25519PrivateKey:
    text = text.strip()
    if _HEX64.match(text.lower()):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{where}: not an unencrypted PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: not an Ed25519 key")
    return key


@dataclass(frozen=True)
class AuditKeys:
    """The signing key (None: not configured) and the public keys verification trusts."""

    signer: Ed25519PrivateKey | None = None
    #: key id -> public key (hex).
    trusted: dict[str, str] = field(default_factory=dict)

    @property
    def public_key(self) -> str | None:
        return public_hex(self.signer.public_key()) if self.signer else None

    def sign(self, message: bytes) -> str:
        if self.signer is None:
            raise SigningKeyError("no audit signing key is configured")
        return self.signer.sign(message).hex()


def load_keys(settings: dict) -> AuditKeys:
    """The keys the settings name. A key that is configured but unreadable is an error
    (a deployment must not quietly run unsigned); a missing one is None."""
    signer = None
    path, inline = settings.get("AUDIT_SIGNING_KEY_FILE"), settings.get("AUDIT_SIGNING_KEY")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise SigningKeyError(f"AUDIT_SIGNING_KEY_FILE {path}: {error.strerror}") from error
        signer = _private_key(text, f"AUDIT_SIGNING_KEY_FILE {path}")
    elif inline:
        signer = _private_key(str(inline), "AUDIT_SIGNING_KEY")
    trusted: dict[str, str] = {}
    for item in re.split(r"[\s,]+", str(settings.get("AUDIT_TRUSTED_KEYS") or "").strip()):
        if item:
            if not _HEX64.match(item.lower()):
                raise SigningKeyError(f"AUDIT_TRUSTED_KEYS: {item!r} is not 64 hex digits")
            trusted[key_id(item.lower())] = item.lower()
    if signer is not None:
        own = public_hex(signer.public_key())
        trusted[key_id(own)] = own
    return AuditKeys(signer, trusted)


def generate_key_file(path: Path) -> str:
    """Write a new Ed25519 private key as PEM, readable by its owner only (0600); never
    overwrites a file. Returns the public key (hex)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: an existing key (perhaps the only copy) is never replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return public_hex(key.public_key())
