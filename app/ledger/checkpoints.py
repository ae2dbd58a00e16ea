"""Signed checkpoints of the audit chain, and what they let anyone verify.

The hash chain (app.ledger.audit) catches an edit inside the chain, but not a chain
rewritten from its first entry, nor a deleted tail: anyone who can write the database can
recompute every hash. A checkpoint signs the chain's length and head hash with an Ed25519
key kept outside the database (app.ledger.signing); verification then checks, for every
checkpoint, that the entry at position `length` still exists and has hash `head`, and that
a trusted key signed it. A checkpoint is taken at each published disclosure (signing the
disclosure's content hash too, so the disclosure can be checked offline) and on a
schedule (`armslength audit-checkpoint`, docs/deployment.md).

The signed message is plain text, one field per line, so it can be rebuilt and checked
with openssl (docs/verify.md):

    armslength audit checkpoint v1
    length 1234
    head <64 hex>
    signed_at 2026-12-04T17:30:00.123456+00:00
    disclosure 7 <64 hex>          ("disclosure none" for a scheduled checkpoint)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from app.errors import SigningUnavailable
from app.ledger.audit import ChainReport
from app.ledger.signing import AuditKeys, key_id, verify_signature
from models import (
    AuditCheckpoint,
    AuditEntry,
    PublishedDisclosure,
    PublishedFundingReport,
    utcnow,
)

MESSAGE_HEADER = "armslength audit checkpoint v1"
#: The format of a published disclosure with its checkpoint (/disclosures/{id}.signed.json).
BUNDLE_FORMAT = "armslength signed disclosure v1"
#: The same for a published funding page (/funding/{id}.signed.json).
FUNDING_BUNDLE_FORMAT = "armslength signed funding report v1"


def message(length: int, head: str, signed_at: datetime | str, disclosure_id: int | None,
            content_hash: str | None) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    at = signed_at if isinstance(signed_at, str) else signed_at.isoformat(timespec="microseconds")
    if disclosure_id is not None:
        subject = f"disclosure {disclosure_id} {content_hash}"
    elif content_hash is not None:
        # A published funding page (app.ledger.funding_report): its content hash, signed at
        # its funding_report.published entry (the chain's head), which names its id.
        subject = f"funding_report {content_hash}"
    else:
        subject = "disclosure none"
    return (f"{MESSAGE_HEADER}\nlength {length}\nhead {head}\nsigned_at {at}\n"
            f"{subject}\n").encode()


def message_of(cp: AuditCheckpoint) -> bytes:
    return message(cp.length, cp.head, cp.signed_at, cp.disclosure_id, cp.content_hash)


# --- taking one --------------------------------------------------------------------------------

def take(session: Session, keys: AuditKeys,
         disclosure: PublishedDisclosure | None = None,
         funding_report: PublishedFundingReport | None = None) -> AuditCheckpoint:
    """Sign the chain's current length and head. Call inside ledger_write(), so the head
    cannot move between the count and the signature; for a disclosure, right after its
    `disclosure.published` entry, which is then the head."""
    if keys.signer is None:
        raise SigningUnavailable("no audit signing key is configured "
                                 "(AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY)")
    session.flush()
    length = session.execute(select(func.count(AuditEntry.id))).scalar_one()
    last = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).one_or_none()
    if last is None:
        raise SigningUnavailable("the audit trail is empty: there is nothing to sign yet")
    public_key = keys.public_key
    cp = AuditCheckpoint(
        length=length, entry_id=last.id, head=last.hash, signed_at=utcnow(),
        disclosure_id=disclosure.id if disclosure is not None else None,
        content_hash=(disclosure.content_hash if disclosure is not None
                      else funding_report.content_hash if funding_report is not None else None),
        key_id=key_id(public_key), public_key=public_key, signature="",
    )
    cp.signature = keys.sign(message_of(cp))
    session.add(cp)
    session.flush()
    return cp


# --- checking one, without the chain ---------------------------------------------------------

def signature_problem(cp: AuditCheckpoint, keys: AuditKeys) -> str | None:
    """Why the checkpoint's signature cannot be trusted, or None. Only keys from the
    configuration count: a key stored in the database beside a forged checkpoint proves
    nothing."""
    trusted = keys.trusted.get(cp.key_id)
    if trusted is None or trusted != cp.public_key:
        return (f"signed by key {cp.key_id}, which is not a trusted key "
                "(the signing key or AUDIT_TRUSTED_KEYS)")
    if not verify_signature(trusted, cp.signature, message_of(cp)):
        return "signed, but its signature does not verify"
    return None


# --- verifying the chain against every checkpoint ---------------------------------------------

@dataclass(frozen=True)
class CheckpointFailure:
    id: int
    length: int
    signed_at: datetime
    problem: str
    #: True for a copy kept outside the database (verify-audit --checkpoints FILE).
    external: bool = False


@dataclass(frozen=True)
class CheckpointReport:
    #: Checkpoints in the database.
    count: int
    #: Audit entries in the chain now.
    entries: int
    #: Every checkpoint that fails, in chain order (by length).
    failures: tuple[CheckpointFailure, ...]
    #: The newest checkpoint (by length), or None.
    latest: AuditCheckpoint | None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def broken_at(self) -> int | None:
        """The first failing checkpoint: nothing from its position on can be trusted."""
        return self.failures[0].id if self.failures else None

    @property
    def problem(self) -> str | None:
        if not self.failures:
            return None
        return describe(self.failures[0])

    @property
    def entries_after_latest(self) -> int:
        """Entries no checkpoint covers yet."""
        return self.entries - (self.latest.length if self.latest else 0)


def _hashes_at(session: Session, positions: set[int], batch: int = 50000) -> tuple[dict, int]:
    """{position: (entry id, hash)} for the wanted positions (1-based, id order), and the
    chain's length. One pass over the id column only (the primary key's index), in keyset
    batches; then the hashes of the few entries wanted."""
    ids: dict[int, int] = {}
    position = 0
    last_id = 0
    conn = session.connection()  # Core rows: the ORM's per-row work would cost more than the read
    while True:
        batch_ids = conn.execute(
            select(AuditEntry.id).where(AuditEntry.id > last_id).order_by(AuditEntry.id)
            .limit(batch)
        ).scalars().all()
        if not batch_ids:
            break
        # Positions are consecutive within a batch: pick the wanted ones by index.
        for wanted in positions:
            if position < wanted <= position + len(batch_ids):
                ids[wanted] = batch_ids[wanted - position - 1]
        position += len(batch_ids)
        last_id = batch_ids[-1]
    hashes: dict[int, str] = {}
    wanted_ids = sorted(ids.values())
    for start in range(0, len(wanted_ids), 500):
        chunk = wanted_ids[start:start + 500]
        hashes.update(session.execute(
            select(AuditEntry.id, AuditEntry.hash).where(AuditEntry.id.in_(chunk))).all())
    return {p: (entry_id, hashes[entry_id]) for p, entry_id in ids.items()}, position


def describe(failure: CheckpointFailure) -> str:
    where = ", a copy kept outside the database" if failure.external else ""
    return (f"checkpoint #{failure.id} (entry {failure.length}, signed "
            f"{failure.signed_at.isoformat(timespec='seconds')}{where}): {failure.problem}")


def checkpoint_lengths(session: Session, external: list[AuditCheckpoint] | tuple = ()) -> set[int]:
    """The chain positions verify_checkpoints will look up: hand them to verify_chain(note=)
    and its report to verify_checkpoints(chain=), and the trail is read once."""
    stored = session.execute(select(AuditCheckpoint.length)).scalars().all()
    return {*stored, *(cp.length for cp in external)}


def verify_checkpoints(session: Session, keys: AuditKeys,
                       external: list[AuditCheckpoint] | tuple = (),
                       chain: ChainReport | None = None) -> CheckpointReport:
    """Check every checkpoint's signature under the trusted keys and its head against the
    chain as it is now. `external`: copies kept outside the database (the scheduled job's
    log, signed disclosures), checked the same way and against the database's own rows, so
    checkpoints deleted together with a rewritten chain are still caught. `chain`: a
    verify_chain report that noted checkpoint_lengths(); without it, or if a checkpoint
    taken since is not in it, the positions are read here."""
    cps = session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.length, AuditCheckpoint.id)
    ).scalars().all()
    stored = {cp.id: cp for cp in cps}
    everything = sorted([(cp, False) for cp in cps] + [(cp, True) for cp in external],
                        key=lambda item: (item[0].length, item[0].id or 0))
    wanted = {cp.length for cp, _ in everything}
    if chain is not None and wanted <= chain.noted.keys():
        at, entries = chain.noted, chain.length
    else:
        at, entries = _hashes_at(session, wanted)
    failures = []
    for cp, is_copy in everything:
        problem = signature_problem(cp, keys)
        if problem is None and is_copy:
            row = stored.get(cp.id)
            if row is None or row.signature != cp.signature:
                problem = "it is no longer in the database (deleted or replaced)"
        if problem is None:
            if cp.length not in at:
                problem = (f"it signed {cp.length} entries but the trail has only {entries}: "
                           "entries were deleted")
            elif at[cp.length][1] != cp.head:
                entry_id, entry_hash = at[cp.length]
                problem = (f"entry {cp.length} (#{entry_id}) has hash {entry_hash[:16]}…, not "
                           f"the signed head {cp.head[:16]}…: the chain was rewritten or "
                           "entries before it deleted")
        if problem is not None:
            failures.append(CheckpointFailure(cp.id, cp.length, cp.signed_at, problem, is_copy))
    return CheckpointReport(len(cps), entries, tuple(failures), cps[-1] if cps else None)


def checkpoints_in_file(text: str) -> list[AuditCheckpoint]:
    """Checkpoints kept outside the database: the lines `audit-checkpoint --json` printed
    (one JSON object per line), or a signed disclosure (/disclosures/{id}.signed.json).
    Raises ValueError for anything else."""
    text = text.strip()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        items = [whole.get("checkpoint", whole)]
    else:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    found = []
    for item in items:
        try:
            found.append(AuditCheckpoint(
                id=int(item["id"]), length=int(item["length"]), entry_id=0,
                head=str(item["head"]), signed_at=datetime.fromisoformat(item["signed_at"]),
                disclosure_id=item["disclosure_id"], content_hash=item["content_hash"],
                key_id=str(item["key_id"]), public_key=str(item["public_key"]),
                signature=str(item["signature"])))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a checkpoint: {error!r} is missing or malformed") from error
    if not found:
        raise ValueError("no checkpoint in it")
    return found


# --- published disclosures --------------------------------------------------------------------

@dataclass(frozen=True)
class DisclosureCheck:
    disclosure_id: int
    #: Why it does not hold, or None.
    problem: str | None
    #: Its signed checkpoint (None: published unsigned, or the row is gone).
    checkpoint: AuditCheckpoint | None

    @property
    def verified(self) -> bool:
        """Its content hash equals the one in its audit entry and in its signed checkpoint."""
        return self.problem is None and self.checkpoint is not None

    @property
    def unsigned(self) -> bool:
        return self.problem is None and self.checkpoint is None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_one(record: PublishedDisclosure | PublishedFundingReport, entry: AuditEntry | None,
               cp: AuditCheckpoint | None, keys: AuditKeys,
               first: AuditCheckpoint | None = None, what: str = "disclosure"
               ) -> DisclosureCheck:
    """first: the earliest checkpoint there is (signing_began). what: "disclosure" or
    "funding report" (the same checks, the same words)."""
    def fail(problem: str) -> DisclosureCheck:
        return DisclosureCheck(record.id, f"{what} {record.id}: {problem}", cp)

    actual = content_hash(record.content)
    if actual != record.content_hash:
        return fail("its content does not match its stored hash")
    action = "disclosure.published" if what == "disclosure" else "funding_report.published"
    if entry is None:
        return fail(f"its {action} audit entry is missing")
    if (entry.data or {}).get("content_hash") != actual:
        return fail(f"its content hash differs from the one in its {action} "
                    f"audit entry (#{entry.id})")
    if cp is None:
        # Once checkpoints are signed, every disclosure published later is signed with its
        # own (docs/verify.md): one without is a checkpoint deleted, or signing switched off
        # (the key removed from the configuration), never merely "unsigned".
        if (entry.data or {}).get("signed"):
            return fail(f"its audit entry (#{entry.id}) says it was signed, but it has no "
                        "checkpoint (deleted?)")
        if first is not None and entry.id > first.entry_id:
            return fail(f"published without a signed checkpoint after signing began "
                        f"(checkpoint #{first.id}, at audit entry #{first.entry_id})")
        return DisclosureCheck(record.id, None, None)
    if cp.content_hash != actual:
        return fail(f"its content hash differs from the one signed in checkpoint #{cp.id}")
    if cp.head != entry.hash:
        return fail(f"checkpoint #{cp.id} did not sign its {action} entry (#{entry.id})")
    problem = signature_problem(cp, keys)
    if problem is not None:
        return fail(f"its checkpoint #{cp.id} is {problem}")
    return DisclosureCheck(record.id, None, cp)


def _published_entries(session: Session, ids: list[int]) -> dict[int, AuditEntry]:
    entries: dict[int, AuditEntry] = {}
    for entry in session.execute(
        select(AuditEntry).where(AuditEntry.action == "disclosure.published",
                                 AuditEntry.entity_type == "published_disclosure",
                                 AuditEntry.entity_id.in_(ids)).order_by(AuditEntry.id)
    ).scalars():
        entries.setdefault(entry.entity_id, entry)  # the first one: the publication
    return entries


def _disclosure_checkpoints(session: Session, ids: list[int]) -> dict[int, AuditCheckpoint]:
    found: dict[int, AuditCheckpoint] = {}
    for cp in session.execute(
        select(AuditCheckpoint).where(AuditCheckpoint.disclosure_id.in_(ids))
        .order_by(AuditCheckpoint.id)
    ).scalars():
        found.setdefault(cp.disclosure_id, cp)
    return found


def signing_began(session: Session) -> AuditCheckpoint | None:
    """The earliest checkpoint, if any: disclosures published after its entry must have one.
    Any checkpoint row counts, trusted or not: a forged one only makes the check stricter,
    and is reported as a failed checkpoint anyway."""
    return session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id).limit(1)).scalar_one_or_none()


def check_disclosure(session: Session, record: PublishedDisclosure,
                     keys: AuditKeys) -> DisclosureCheck:
    """What the public page's "(verified)" means, for one disclosure."""
    return _check_one(record, _published_entries(session, [record.id]).get(record.id),
                      _disclosure_checkpoints(session, [record.id]).get(record.id), keys,
                      signing_began(session))


def check_disclosures(session: Session, keys: AuditKeys) -> list[DisclosureCheck]:
    records = session.execute(
        select(PublishedDisclosure).order_by(PublishedDisclosure.id)
    ).scalars().all()
    ids = [r.id for r in records]
    entries = _published_entries(session, ids) if ids else {}
    cps = _disclosure_checkpoints(session, ids) if ids else {}
    first = signing_began(session) if ids else None
    return [_check_one(r, entries.get(r.id), cps.get(r.id), keys, first) for r in records]


def _funding_entries(session: Session, ids: list[int]) -> dict[int, AuditEntry]:
    entries: dict[int, AuditEntry] = {}
    for entry in session.execute(
        select(AuditEntry).where(AuditEntry.action == "funding_report.published",
                                 AuditEntry.entity_type == "published_funding_report",
                                 AuditEntry.entity_id.in_(ids)).order_by(AuditEntry.id)
    ).scalars():
        entries.setdefault(entry.entity_id, entry)
    return entries


def _funding_checkpoint(session: Session, record: PublishedFundingReport,
                        entry: AuditEntry | None) -> AuditCheckpoint | None:
    """The checkpoint taken for a funding page: the one that signed its content hash at its
    funding_report.published entry (none names the page: its entry does)."""
    found = session.execute(
        select(AuditCheckpoint).where(AuditCheckpoint.disclosure_id.is_(None),
                                      AuditCheckpoint.content_hash == record.content_hash)
        .order_by(AuditCheckpoint.id)).scalars().all()
    for cp in found:
        if entry is not None and cp.entry_id == entry.id:
            return cp
    return found[0] if found else None


def check_funding_report(session: Session, record: PublishedFundingReport,
                         keys: AuditKeys) -> DisclosureCheck:
    """What the public funding page's "(verified)" means, as check_disclosure."""
    entry = _funding_entries(session, [record.id]).get(record.id)
    return _check_one(record, entry, _funding_checkpoint(session, record, entry), keys,
                      signing_began(session), what="funding report")


def check_funding_reports(session: Session, keys: AuditKeys) -> list[DisclosureCheck]:
    records = session.execute(
        select(PublishedFundingReport).order_by(PublishedFundingReport.id)).scalars().all()
    if not records:
        return []
    entries = _funding_entries(session, [r.id for r in records])
    first = signing_began(session)
    return [_check_one(r, entries.get(r.id), _funding_checkpoint(session, r, entries.get(r.id)),
                       keys, first, what="funding report") for r in records]


# --- the offline form ---------------------------------------------------------------------------

def checkpoint_json(cp: AuditCheckpoint) -> dict:
    return {
        "id": cp.id, "length": cp.length, "head": cp.head,
        "signed_at": cp.signed_at.isoformat(timespec="microseconds"),
        "disclosure_id": cp.disclosure_id, "content_hash": cp.content_hash,
        "key_id": cp.key_id, "public_key": cp.public_key, "signature": cp.signature,
        "message": message_of(cp).decode("utf-8"),
    }


def signed_bundle(record: PublishedDisclosure, cp: AuditCheckpoint) -> dict:
    """A published disclosure with its checkpoint: everything an offline check needs.
    `content` is the published JSON text itself (its SHA-256 is `content_hash`)."""
    return {
        "format": BUNDLE_FORMAT,
        "disclosure_id": record.id,
        "published_at": record.published_at.isoformat(timespec="seconds"),
        "content_hash": record.content_hash,
        "content": record.content,
        "checkpoint": checkpoint_json(cp),
    }


def signed_funding_bundle(record: PublishedFundingReport, cp: AuditCheckpoint) -> dict:
    """A published funding page with its checkpoint (/funding/{id}.signed.json)."""
    return {
        "format": FUNDING_BUNDLE_FORMAT,
        "funding_report_id": record.id,
        "published_at": record.published_at.isoformat(timespec="seconds"),
        "content_hash": record.content_hash,
        "content": record.content,
        "checkpoint": checkpoint_json(cp),
    }


def verify_bundle(bundle: dict, trusted_public_key: str | None = None) -> list[str]:
    """Check a signed disclosure or funding page offline (no database): what is wrong, or
    [] if it holds.

    The signature is checked under `trusted_public_key` when given (the organisation's
    published key), else under the key in the file, whose key id the reader then compares
    with the one the organisation publishes."""
    problems: list[str] = []
    try:
        content, claimed = bundle["content"], bundle["content_hash"]
        cp = bundle["checkpoint"]
        fields = (int(cp["length"]), str(cp["head"]), str(cp["signed_at"]),
                  cp["disclosure_id"], cp["content_hash"])
        public_key, signature = str(cp["public_key"]), str(cp["signature"])
        claimed_key_id = str(cp["key_id"])
    except (KeyError, TypeError, ValueError) as error:
        return [f"not a signed disclosure file: {error!r} is missing or malformed"]
    if not isinstance(content, str):
        return ["not a signed disclosure file: content must be the published JSON text"]
    actual = content_hash(content)
    if actual != claimed:
        problems.append(f"the content's SHA-256 is {actual}, not the stated {claimed}")
    if fields[4] != actual:
        problems.append("the checkpoint signed a different content hash "
                        f"({fields[4]}) than the content's ({actual})")
    if bundle.get("format") == FUNDING_BUNDLE_FORMAT:
        if fields[3] is not None:
            problems.append("the checkpoint was taken for a disclosure, not a funding page")
    elif fields[3] != bundle.get("disclosure_id"):
        problems.append("the checkpoint was taken for another disclosure")
    if trusted_public_key is not None and public_key.lower() != trusted_public_key.lower():
        problems.append(f"signed by key {claimed_key_id}, not by the public key you trust "
                        f"({key_id(trusted_public_key)})")
    else:
        try:
            if key_id(public_key) != claimed_key_id:
                problems.append("the key id does not match the public key")
        except ValueError:
            problems.append("the public key is not hex")
        if not verify_signature(public_key, signature, message(*fields)):
            problems.append("the checkpoint's signature does not verify")
    return problems
