"""The chain hash of one audit entry: SHA-256 of its canonical JSON (sorted keys, no
spaces, UTF-8). Standard library only, and no import from this package, so the chain
walk's helper process (app/ledger/chain_part.py, run by path) loads this very file
without starting the app (app.ledger.chain_walk)."""

from __future__ import annotations

import hashlib
import json
from json.encoder import c_make_encoder, encode_basestring


def _no_default(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _canonical_encoder():
    """json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False), without
    building an encoder for every entry: the same C encoder json.dumps builds for these
    arguments, built once (no circular-reference markers: a body is never circular)."""
    if c_make_encoder is None:  # no C accelerator: json.dumps's pure-Python path
        encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return encoder.encode
    encode = c_make_encoder(None, _no_default, encode_basestring, None, ":", ",", True, False,
                            True)
    return lambda body: "".join(encode(body, 0))


canonical = _canonical_encoder()


def entry_digest(prev_hash: str, at: str, actor: str, actor_id: int | None, action: str,
                 entity_type: str, entity_id: int | None, data, sealed) -> str:
    """The chain hash of one entry's fields (audit.entry_hash spells `at` and reads them
    from the entry; the chain walk passes the columns it read)."""
    body = {
        "prev": prev_hash,
        "at": at,
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "data": data,
    }
    # Row hashes (app.ledger.row_hashes) are covered when present; entries written before
    # they existed hash as they always did.
    if sealed is not None:
        body["rows"] = sealed
    return hashlib.sha256(canonical(body).encode()).hexdigest()


_scan = json.JSONDecoder().scan_once


def loads(text: str):
    """json.loads(text), by the same C scanner without its two Python layers; json.loads
    itself wherever the text is not exactly one JSON value (whitespace around it, an
    error), so the answer is always json.loads's."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


LINK_BROKEN = "previous-hash link does not match"
CONTENT_CHANGED = "content does not match its hash"


class NeedsTypes(Exception):  # noqa: N818 - a signal, not an error
    """An entry's instant came back unspelled (SQLite, a form other than SQLAlchemy's):
    only the column's type can read it, so the part is walked where the app's types are."""


def walk_rows(chunks, start: int, wanted, at_of=None) -> dict:
    """Walk one part's rows (at, id, actor, actor_id, action, entity_type, entity_id, data
    text, row_hashes text, prev_hash, hash), in id order, given in chunks (app.ledger.
    chain_walk explains the parts). `at_of(entry id)`: the instant as entry_hash spells
    it, for an `at` the database did not spell (None: raise NeedsTypes)."""
    wanted = {p for p in wanted if p > start}
    count = 0
    prev = first_id = first_prev = None
    failure = None
    noted = {}
    digest_of = entry_digest
    for chunk in chunks:
        for (at, entry_id, actor, actor_id, action, entity_type, entity_id, data, sealed,
             prev_hash, digest) in chunk:
            if count == 0:
                first_id, first_prev, prev = entry_id, prev_hash, prev_hash
            if failure is None:
                if prev_hash != prev:
                    failure = (entry_id, LINK_BROKEN, count)
                else:
                    if not isinstance(at, str):
                        if at_of is None:
                            raise NeedsTypes(entry_id)
                        at = at_of(entry_id, at)
                    # JSON null and SQL NULL both mean no row hashes (as the ORM reads them).
                    if digest_of(prev, at, actor, actor_id, action, entity_type, entity_id,
                                 loads(data), None if sealed is None else loads(sealed)
                                 ) != digest:
                        failure = (entry_id, CONTENT_CHANGED, count)
            prev = digest
            count += 1
            if start + count in wanted:
                noted[start + count] = (entry_id, digest)
    return {"start": start, "count": count, "first_id": first_id, "first_prev": first_prev,
            "last_hash": prev, "failure": failure, "noted": noted}
