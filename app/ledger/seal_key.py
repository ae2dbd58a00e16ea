"""The key of the keyed row seals: HMAC-SHA256 over columns that are personal data or
secrets (a donor's name, e-mail and matching keys; a staff account's password hash).

Those columns must be sealed, or an insider with database access could rename a lab's
executive so the possible-match lookup misses, or set a known password hash on a reviewer's
account. But a plain SHA-256 of them, kept forever in the append-only chain, would let
anyone holding a copy of the chain test guesses ("is this donor jane@example.org?"). Under
a key kept outside the database, the chain holds nothing a guess can be tested against,
and verification, which has the key, still names the changed row.

The key comes from AUDIT_SEAL_KEY_FILE (a file holding at least 32 characters, e.g. 64 hex
digits from `armslength audit-seal-keygen`) or AUDIT_SEAL_KEY (the same text), never from
the database. Without one, development and tests use DEVELOPMENT_KEY (public: seals made
with it protect no personal data); production refuses to start (app.config).

The key is per process: the app factory installs it (configure), and every seal made or
checked in the process uses it. A process that makes no app (a script, the bench) uses the
development key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

#: Public, in the source: only for development and tests (docs/deployment.md).
DEVELOPMENT_KEY = b"armslength development row-seal key: public, never for real data"

MIN_LENGTH = 32

_key: bytes = DEVELOPMENT_KEY


class SealKeyError(ValueError):
    """A seal key that is configured but cannot be read, or too short."""


def load(settings: dict) -> bytes | None:
    """The key the settings name, or None if none is configured."""
    path, inline = settings.get("AUDIT_SEAL_KEY_FILE"), settings.get("AUDIT_SEAL_KEY")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise SealKeyError(f"AUDIT_SEAL_KEY_FILE {path}: {error.strerror}") from error
        where = f"AUDIT_SEAL_KEY_FILE {path}"
    elif inline:
        text, where = str(inline), "AUDIT_SEAL_KEY"
    else:
        return None
    text = text.strip()
    if len(text) < MIN_LENGTH:
        raise SealKeyError(f"{where}: the key must be at least {MIN_LENGTH} characters long")
    return text.encode()


def configure(key: bytes | None) -> None:
    """Use this key for every keyed seal made or checked in this process (None: the
    development key)."""
    global _key
    _key = key or DEVELOPMENT_KEY


def current() -> bytes:
    return _key


def key_id(key: bytes) -> str:
    """A key's public name (16 hex digits of a SHA-256 of it, domain-separated): what the
    chain records of a rotation, so a verifier can tell which key a trail was sealed under
    without the key being readable from it."""
    return hashlib.sha256(b"armslength seal key id\0" + key).hexdigest()[:16]


def generate_key_file(path: Path) -> None:
    """Write a new random key (64 hex digits), readable by its owner only; never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
