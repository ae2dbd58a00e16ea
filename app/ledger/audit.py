"""The append-only, hash-chained audit trail.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own
canonical JSON, so any edit, deletion or reordering breaks verification from
that row on. Callers append inside a ledger_write() transaction, which makes the
chain's head stable while they extend it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Text, cast, literal_column, select
from sqlmodel import Session

from app.db import rows
from app.ledger import row_hashes
from app.ledger.chain_hash import entry_digest
from models import GENESIS_HASH, AuditEntry, utcnow


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (through the web or a token), a command, or Stripe."""

    label: str
    user_id: int | None = None
    role: str | None = None


SYSTEM = Actor("system", role="admin")


def _jsonable(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return _hash(prev_hash, entry.at.isoformat(timespec="microseconds"), entry.actor,
                 entry.actor_id, entry.action, entry.entity_type, entry.entity_id, entry.data,
                 getattr(entry, "row_hashes", None))


#: The chain hash of one entry's fields (app.ledger.chain_hash, which the chain walk's helper
#: process loads without the app).
_hash = entry_digest


#: The chain hash of an entry given as its fields, for a writer with no ORM object (a
#: migration's entry: app.ledger.row_sealing.append_watermark).
chain_hash = _hash

_HEAD = select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)

#: The chain's head as a scalar subquery, for a caller that reads it along with its own
#: first read under the ledger lock and hands it to known_head() (the one door does).
HEAD_SUBQUERY = _HEAD.scalar_subquery()

#: session.info key: (the transaction that last appended, the hash it appended).
_HEAD_KEY = "armslength.audit_head"


def known_head(session: Session, head: str | None) -> None:
    """Tell the chain the head that a read in this transaction, under the ledger lock,
    returned (HEAD_SUBQUERY; None for an empty trail), so the next append need not read it.

    Only under the lock: it holds from that read to the end of the transaction, so no one
    else can append in between (the same reason chain_head caches what this transaction
    appended). PostgreSQL's READ COMMITTED takes a fresh snapshot per statement, so a read
    made after lock_ledger sees every entry committed by earlier lock holders.
    """
    if _HEAD_KEY in session.info and session.info[_HEAD_KEY][0] is session.get_transaction():
        return  # this transaction has appended already: its own last entry is the head
    session.info[_HEAD_KEY] = (session.get_transaction(), head or GENESIS_HASH)


def chain_head(session: Session) -> str:
    # Within a transaction that has appended already (an import, a webhook, a rescreen of
    # several gifts), the head is what it appended last: it holds the ledger lock, so no one
    # else can have appended since. A new transaction reads the head from the table, unless
    # a read under the lock told it already (known_head).
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and cached[0] is not None and cached[0] is session.get_transaction():
        return cached[1]
    last = session.execute(_HEAD).scalar_one_or_none()
    return last or GENESIS_HASH


def append(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int | None,
    data: dict | None = None,
    sealed: list | None = None,
) -> AuditEntry:
    """Add an entry after the chain's head, written at once (one INSERT, see rows).
    sealed: the rows of sealed tables (app.ledger.row_hashes) this entry wrote or changed,
    as ORM objects or seals; their hashes go into the entry."""
    prev = chain_head(session)
    entry = rows.new(
        AuditEntry,
        at=utcnow(),
        actor=actor.label,
        actor_id=actor.user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        data=_jsonable(data or {}),
        row_hashes=row_hashes.seals(sealed) if sealed else None,
        prev_hash=prev,
        hash="",
    )
    entry.hash = entry_hash(prev, entry)
    rows.insert(session, entry)
    session.info[_HEAD_KEY] = (session.get_transaction(), entry.hash)
    return entry


def append_many(session: Session, actor: Actor, entries: list[tuple]) -> None:
    """Add entries (action, entity_type, entity_id, data[, sealed]) after the chain's head, in
    order, written by one executemany: what append() per entry would write."""
    prev = chain_head(session)
    values = []
    for action, entity_type, entity_id, data, *more in entries:
        sealed = more[0] if more else None
        entry = rows.new(AuditEntry, at=utcnow(), actor=actor.label, actor_id=actor.user_id,
                         action=action, entity_type=entity_type, entity_id=entity_id,
                         data=_jsonable(data),
                         row_hashes=row_hashes.seals(sealed) if sealed else None,
                         prev_hash=prev, hash="")
        entry.hash = prev = entry_hash(prev, entry)
        values.append(rows.values_of(entry))
    rows.bulk_insert(session, AuditEntry, values)
    if values:
        session.info[_HEAD_KEY] = (session.get_transaction(), prev)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    #: The first entry whose stored hashes do not match, if any.
    broken_at: int | None = None
    problem: str | None = None
    #: {position (1-based, id order): (entry id, hash)} for the positions verify_chain was
    #: asked to note (the signed checkpoints' lengths), as the walk read them.
    noted: dict[int, tuple[int, str]] = field(default_factory=dict, compare=False, repr=False)
    #: Entries in the trail (all of them, even past a break; for the checkpoints).
    length: int = 0


#: `at` as entry_hash spells it (isoformat, UTC, microseconds), spelled by the database
#: rather than parsed into a datetime and printed again for every entry. SQLite: only for
#: the form SQLAlchemy writes ("YYYY-MM-DD HH:MM:SS.ffffff", UTC); anything else is NULL
#: and read through the column's type instead (verify_chain), as entry_hash would read it.
_AT_TEXT = {
    "postgresql": literal_column(
        """to_char(audit_entry."at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""),
    "sqlite": literal_column(
        "CASE WHEN audit_entry.\"at\" GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
        "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' "
        "AND datetime(julianday(substr(audit_entry.\"at\", 1, 19))) "
        "= substr(audit_entry.\"at\", 1, 19) "
        "THEN substr(audit_entry.\"at\", 1, 10) || 'T' || substr(audit_entry.\"at\", 12) "
        "|| '+00:00' END"),
}

#: What verify_chain reads: the hashed fields, JSON columns as their stored text (parsed
#: once here, by json.loads, rather than by the driver or SQLAlchemy and then again).
_CHAIN_COLUMNS = (AuditEntry.id, AuditEntry.actor, AuditEntry.actor_id,
                  AuditEntry.action, AuditEntry.entity_type, AuditEntry.entity_id,
                  cast(AuditEntry.data, Text), cast(AuditEntry.row_hashes, Text),
                  AuditEntry.prev_hash, AuditEntry.hash)


def verify_chain(session: Session, batch: int = 10_000,
                 note: Iterable[int] | None = None) -> ChainReport:
    """Walk the whole chain in id order and say where it first breaks.

    Each entry stores its predecessor's hash, so entry i holds if its prev_hash equals
    entry i-1's stored hash and its own hash is H(prev_hash, its content): the same test,
    entry by entry, as recomputing the chain from the genesis hash, which is what the walk
    amounts to (it stops being exact only after the first failure, where it reports). The
    same test lets a long trail be walked in parts on two processes (app.ledger.chain_walk).
    `note`: positions whose (id, hash) to record in the report for the signed checkpoints
    (app.ledger.checkpoints), so they need no second pass over the trail; given (even
    empty), the walk also reads to the end past a break, to count the entries (length)."""
    from app.ledger.chain_walk import walk  # it builds on this module

    return walk(session.connection(), note, batch)
