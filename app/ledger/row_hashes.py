"""Row hashes: the audit chain's record of what each ledger row held when it was written.

An audit entry that writes or changes a row of money or of the policy's facts carries that
row's hash ("seal") in its `row_hashes` column, which the entry's own chain hash covers
(app.ledger.audit.entry_hash). Verification (app.ledger.row_verify) reads every live row
again, hashes it the same way, and compares it with the latest entry that sealed it: an
edit made outside the app, a row with no entry, an entry whose row is gone all show, by id.

This module is the one place that knows which tables are sealed, which of their columns
count, and how a row becomes bytes. The hot path hashes values already in memory (an ORM
object just written, or the dict a bulk insert wrote); nothing here reads the database.

To seal another table: add it to SEALED (its model, and the columns whose change matters),
and pass the rows every write of it touches to audit.append(..., rows=[...]).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import JSON, Text, cast
from sqlmodel import SQLModel

from app.ledger import seal_key
from models import (
    AccountLink,
    Acknowledgement,
    Affiliation,
    ApiToken,
    Appeal,
    Attribution,
    Campaign,
    Decision,
    Donor,
    DonorMerge,
    Fund,
    Gift,
    GiftCorrection,
    GiftDesignation,
    GiftTribute,
    IdentityVerdict,
    InKindArrangement,
    OnlineDonation,
    Organization,
    OverrideRequest,
    PendingChange,
    Pledge,
    PledgeInstalment,
    PolicyVersion,
    PublishedDisclosure,
    PublishedFundingReport,
    Refund,
    Relationship,
    RosterEntry,
    StripeDispute,
    SupportClass,
    SupportFactRemoval,
    SupportLink,
    UnusualGrant,
    User,
)


@dataclass(frozen=True)
class Sealed:
    """A sealed table: its model and the columns its hash covers, in this order."""

    model: type[SQLModel]
    columns: tuple[str, ...]
    #: The table's name, kept here: SQLModel's __tablename__ is a slow descriptor.
    table: str
    #: Positions (in columns) of JSON columns: hashed as the JSON text the database holds.
    json_at: tuple[int, ...]
    #: The column that identifies a row (its integer primary key): "id" but for donor_merge.
    key: str = "id"
    #: Sealed by HMAC-SHA256 under the seal key (app.ledger.seal_key), not by SHA-256: the
    #: columns are personal data or secrets, and the chain must hold nothing a guess of
    #: them can be tested against. Such a seal is named "<table>.<what>" and sits beside the
    #: row's plain seal (two seals of one row); it is always hashed in Python.
    keyed: bool = False
    #: Columns added to the table after its rows were first sealed, last in `columns`. They
    #: are hashed only when one of them is set (then as one trailing {name: value} object),
    #: so every row sealed before they existed keeps its hash, and a value set, changed or
    #: cleared later still shows.
    later: tuple[str, ...] = ()

    @property
    def first(self) -> int:
        """How many of `columns` are always hashed (those before the later ones)."""
        return len(self.columns) - len(self.later)


def _sealed(model: type[SQLModel], columns: tuple[str, ...], key: str = "id",
            later: tuple[str, ...] = ()) -> Sealed:
    table = model.__table__
    columns = (*columns, *later)
    return Sealed(model, columns, table.name,
                  tuple(i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)),
                  key, later=later)


def _keyed(model: type[SQLModel], what: str, columns: tuple[str, ...]) -> Sealed:
    """A keyed seal of some of the model's columns (plain text ones), beside its plain seal."""
    return Sealed(model, ("id", *columns), f"{model.__table__.name}.{what}", (), "id", True)


def _all_columns(model: type[SQLModel], *, leave_out: tuple[str, ...] = (),
                 key: str = "id", later: tuple[str, ...] = ()) -> Sealed:
    return _sealed(model, tuple(c.key for c in model.__table__.columns
                                if c.key not in leave_out and c.key not in later), key, later)


#: Every sealed table, by table name. All columns, except where noted.
SEALED: dict[str, Sealed] = {s.table: s for s in (
    # The goods or services given in return came later (migration 0031): part of the gift's
    # facts (its letter's deductible amount), hashed only on the gifts that have them.
    _all_columns(Gift, later=("goods_description", "goods_value_minor")),
    _all_columns(Attribution),
    _all_columns(Decision),
    _all_columns(Refund),
    # What a gift was raised by and for (written with the gift), and the campaigns, appeals
    # and funds it names: a fund's restricted flag decides what the money may be spent on.
    _all_columns(GiftDesignation),
    _all_columns(Campaign),
    _all_columns(Appeal),
    _all_columns(Fund),
    # Whom a tribute gift honours or remembers, and whom to tell: written with the gift. The
    # names and address are personal data (erasable): keyed, beside the plain seal.
    _sealed(GiftTribute, ("id", "gift_id", "kind")),
    _keyed(GiftTribute, "names", ("honoree_name", "notify_name", "notify_address")),
    # A mistaken gift voided, and the gift recorded in its place.
    _all_columns(GiftCorrection),
    # updated_at moves with every webhook delivery; the dispute's facts are the rest.
    _all_columns(StripeDispute, leave_out=("updated_at",)),
    _all_columns(Affiliation),
    _all_columns(Organization),
    _all_columns(PolicyVersion),
    _all_columns(OverrideRequest),
    _all_columns(PublishedDisclosure),
    _all_columns(PublishedFundingReport),
    # Only what the policy reads: a donor's name and e-mail are personal data that may be
    # erased on request, and a hash of them kept forever in the chain would outlive that.
    _sealed(Donor, ("id", "type", "organization_id", "category")),
    # ...but who the donor is must not change unseen either: renamed, or given another
    # e-mail or matching keys, a lab executive's record would no longer be found as the
    # namesake of a new one (app.ledger.identity, matches). Keyed (see Sealed.keyed), so
    # the chain holds nothing readable, and erasure stays possible. So must whether the
    # donor may be named in public (anonymous, and the funding page's consent): flipped
    # unseen, a signed funding page would name someone who never agreed.
    _keyed(Donor, "identity", ("name", "email", "phone", "postal_address", "email_key",
                               "name_key_a", "name_key_b", "phone_key", "anonymous",
                               "public_name_consent")),
    # Who is (not) the same person: a "different" verdict silences a possible_match hold.
    _all_columns(IdentityVerdict),
    # A roster entry: what the policy reads, plainly; who the person is (name, title, where
    # it is known from, matching keys), keyed as donor.identity is (migration 0027): renamed
    # or rekeyed unseen, a lab executive on the roster would no longer match a donor.
    _sealed(RosterEntry, ("id", "organization_id", "start_date", "end_date",
                          "senior_decision_maker", "created_by_id", "created_at")),
    _keyed(RosterEntry, "identity", ("name", "title", "source", "name_key_a", "name_key_b")),
    # Who is whose spouse, partner or household: the household rule reads them.
    _all_columns(Relationship),
    # Where a merged record went; keyed by the merged record's id (no id column of its own).
    _all_columns(DonorMerge, key="duplicate_id"),
    # Two-person control: what was proposed, by whom, who decided.
    _all_columns(PendingChange),
    # Who may approve: role, when it was given (approver_min_age_days), whether the account
    # is active, and its second factor. Not what changes at sign-in or while enrolling,
    # outside the ledger lock (totp_last_step, session_nonce, a password hash upgraded at
    # sign-in, a pending enrolment's secret): docs/verify.md says what that leaves open.
    _all_columns(User, leave_out=("password_hash", "session_nonce", "totp_last_step",
                                  "totp_pending_secret", "totp_pending_at")),
    # The password hash, keyed: replaced behind the app's back, it would let an insider sign
    # in as a reviewer without a second factor. Every way the app sets it seals it (created,
    # invited, a link used, changed, reset, upgraded at sign-in under the ledger lock).
    _keyed(User, "password", ("password_hash",)),
    # One-time invitation and reset links (their hashes): a link inserted or revived behind
    # the app's back would let an insider set a reviewer's password.
    _all_columns(AccountLink),
    # Who may act through the API: a token row inserted behind the app's back for a
    # reviewer would let one insider approve their own change as that reviewer.
    # (last_used_at is never written.)
    _all_columns(ApiToken),
    # Cancellation's day and reason came later (migration 0033): sealing them would change
    # the hash of every pledge sealed before; the state they go with is sealed.
    _all_columns(Pledge, leave_out=("cancelled_on", "cancel_reason")),
    _all_columns(PledgeInstalment),
    _all_columns(InKindArrangement),
    # The letter's text and address are personal data; its content_hash stands for them.
    _all_columns(Acknowledgement, leave_out=("content", "sent_to")),
    # The donate form's declaration, who the donation is for and its policy preview: what
    # the policy reads at the payment. Not the Stripe ids, state and notes that webhook
    # deliveries keep moving (those are Stripe's facts, checked against Stripe).
    _sealed(OnlineDonation, (
        "id", "donor_id", "payer_donor_id", "amount_minor", "currency", "frequency",
        "declared_employer", "declared_lab_id", "declared_senior", "via_daf", "daf_sponsor",
        "daf_advisor", "donor_created", "declaration_state", "declaration_gift_id",
        "anonymous", "preview_outcome", "policy_version", "reference", "created_at")),
    # The public-support facts: who counts as one contributor, who is not limited to 2%,
    # which gifts are left out as unusual grants; and what a removed one said. They change
    # the percentage the organisation files (docs/public-support.md). Reasons included: a
    # hash only, the words stay on the row (the audit entries carry none of them).
    _all_columns(SupportLink),
    _all_columns(SupportClass, key="donor_id"),
    _all_columns(UnusualGrant, key="gift_id"),
    _all_columns(SupportFactRemoval),
)}

#: A model's seals: its plain one first, then its keyed ones.
_BY_MODEL: dict[type, tuple[Sealed, ...]] = {}
for _s in SEALED.values():
    _BY_MODEL[_s.model] = (*_BY_MODEL.get(_s.model, ()), _s)


def _plain(value):
    """JSON's default= hook: the few column types JSON does not know, one spelling each."""
    if isinstance(value, datetime):
        # Instants are aware UTC when written (models.utcnow) and read back (UTCDateTime);
        # a naive one is taken as UTC, so the spelling never depends on the driver.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__} column value")


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_plain).encode


def stored_json(value) -> str | None:
    """A JSON column's value as the database holds it: SQLAlchemy's JSON type, and the bulk
    COPY (app.db.rows), both write json.dumps(value); PostgreSQL's json type and SQLite keep
    that text verbatim. Verification reads the text back instead of parsing and re-encoding
    every decision's reasons, which was most of its time."""
    return None if value is None else json.dumps(value)


def canonical(sealed: Sealed, values: Mapping) -> str:
    """A row's sealed columns as canonical JSON: [table, value, value, ...] in column order;
    dates ISO 8601, instants UTC with microseconds, JSON columns as their stored text."""
    ordered = [values.get(c) if c in sealed.later else values[c] for c in sealed.columns]
    for i in sealed.json_at:
        ordered[i] = stored_json(ordered[i])
    return _ENCODE([sealed.table, *_with_later(sealed, ordered)])


def _with_later(sealed: Sealed, ordered) -> list:
    """The values as hashed: the later columns (Sealed.later) as one trailing object when
    any is set, else left out."""
    if not sealed.later:
        return list(ordered)
    first, rest = list(ordered[:sealed.first]), ordered[sealed.first:]
    if all(value is None for value in rest):
        return first
    return [*first, dict(zip(sealed.later, rest, strict=True))]


def _digest(sealed: Sealed, text: str) -> str:
    if sealed.keyed:
        return hmac.new(seal_key.current(), text.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def row_hash(sealed: Sealed, values: Mapping) -> str:
    """SHA-256 (hex) of canonical(sealed, values), or its HMAC for a keyed seal: what an
    audit entry records for the row."""
    return _digest(sealed, canonical(sealed, values))


def stored_row_hash(sealed: Sealed, ordered: tuple) -> str:
    """row_hash of a row read for verification: its values in sealed.columns order, JSON
    columns already as their stored text (read_columns)."""
    return _digest(sealed, _ENCODE([sealed.table, *_with_later(sealed, ordered)]))


def read_columns(sealed: Sealed) -> list:
    """The columns to SELECT for stored_row_hash: JSON columns cast to text, so neither the
    driver nor SQLAlchemy parses them."""
    columns = sealed.model.__table__.c
    return [cast(columns[c], Text) if i in sealed.json_at else columns[c]
            for i, c in enumerate(sealed.columns)]


def seals_of(row: SQLModel) -> list[list]:
    """[table, id, hash] of a persistent row of a sealed table, from its values in memory
    (they are what was, or will at the next flush be, written): one per seal of its model
    (a donor and a staff account have a keyed one besides)."""
    values = row.__dict__
    return [[sealed.table, values[sealed.key], row_hash(sealed, values)]
            for sealed in _BY_MODEL[type(row)]]


def seal_values(model: type[SQLModel], values: Mapping) -> list:
    """[table, id, hash] of a row given as the column values a bulk insert wrote (id
    included), for a model with one seal (see seals_of_values)."""
    [sealed] = _BY_MODEL[model]
    return [sealed.table, values[sealed.key], row_hash(sealed, values)]


def seals_of_values(model: type[SQLModel], values: Mapping) -> list[list]:
    """Every seal of a row given as the column values a bulk insert wrote (id included)."""
    return [[sealed.table, values[sealed.key], row_hash(sealed, values)]
            for sealed in _BY_MODEL[model]]


def removed(model: type[SQLModel], row_id: int) -> list:
    """The seal of a row the app deleted (an affiliation recorded in error): no hash, so
    verification expects the row to be gone, and reports it if it comes back."""
    [sealed] = _BY_MODEL[model]
    return [sealed.table, row_id, None]


def removed_all(model: type[SQLModel], row_id: int) -> list[list]:
    """removed() for every seal of the model (a roster entry has a keyed one besides)."""
    return [[sealed.table, row_id, None] for sealed in _BY_MODEL[model]]


def keyed_seals() -> tuple[Sealed, ...]:
    """The keyed seals, in table order: what a seal-key rotation re-seals."""
    return tuple(s for _name, s in sorted(SEALED.items()) if s.keyed)


def keyed_digest(sealed: Sealed, ordered: tuple, key: bytes) -> str:
    """stored_row_hash of a keyed seal under the given key, not the process's."""
    return hmac.new(key, _ENCODE([sealed.table, *ordered]).encode(), hashlib.sha256).hexdigest()


def seals(rows: Iterable[SQLModel | list]) -> list[list]:
    """Seals of rows: ORM objects, or seals already made (seal_values)."""
    out: list[list] = []
    for row in rows:
        if isinstance(row, list):
            out.append(row)
        else:
            out += seals_of(row)
    return out
