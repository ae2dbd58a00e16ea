"""CSV import of donors, affiliations and historical gifts: check every row, then all or nothing.

An import is two passes over the uploaded files, which are read as streams, one row
at a time, never whole:

1. check: every row is validated with the same ...Create models the forms and the
   API use, plus the references a row makes (its donor, its organisation, ids that
   must be new). Every bad row is reported with its line and its reasons. Good rows
   are copied to a staging SQLite file in a temporary directory, so the second pass
   can read gifts back in date order without holding them in memory (SQLite sorts
   on disk, using an index on (received_on, line)).
2. import (only if no row is bad): donors (parties.create_donors, in bulk), then
   affiliations (add_affiliation), then gifts in date order through a GiftIntake: the
   one door's checks and policy, each gift screened against the ledger as it stands
   after the gifts dated before it, its rows written in chunks (app/ledger/intake.py).
   All inside one ledger_batch: one transaction under the ledger lock. A failure at any
   row rolls everything back.

The check pass runs without the lock. Anything that changed in between (a gift with
the same external_ref recorded meanwhile) is caught by the services in pass 2, and
the whole import is refused.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session

from app.db.locking import ledger_batch
from app.db.lookups import one_of
from app.db.rows import insert_many
from app.db.rows import new as rows_new
from app.errors import LedgerError, RowRefused, ValidationFailed
from app.ledger import audit, campaigns
from app.ledger.audit import Actor
from app.ledger.gifts import recorded_payment_ids, reporting_amount
from app.ledger.identity import MatchIndex
from app.ledger.intake import GiftIntake
from app.ledger.parties import add_affiliation, create_donors, new_donor_values
from app.ledger.search import OrganizationNames
from models import (
    Affiliation,
    Appeal,
    Donor,
    DonorExternalId,
    DonorMerge,
    Fund,
    IllegalTransition,
)
from models.money import GIFT_CEILING_MINOR
from models.schemas import AffiliationCreate, DonorCreate, GiftCreate, field_errors
from policies import Policy
from policies.identity import Signals, email_key, match_score, score_text

#: The files an import takes, in the order they are checked and imported.
KINDS = ("donors", "affiliations", "gifts")


@dataclass(frozen=True)
class Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


#: The columns of each file; docs/import.md describes them.
COLUMNS: dict[str, Columns] = {
    "donors": Columns(("external_id", "type", "name"),
                      ("email", "category", "organization", "phone", "postal_address")),
    "affiliations": Columns(
        ("donor_external_id", "organization", "senior_decision_maker", "start_date"),
        ("kind", "title", "end_date"),
    ),
    "gifts": Columns(
        ("external_ref", "donor_external_id", "amount", "currency", "received_on"),
        ("kind", "purpose", "method", "fx_rate", "description", "campaign", "appeal", "fund"),
    ),
}

#: Rows validated and looked up in the database together (one IN query per chunk).
CHUNK = 500
#: Held or rejected gifts listed by line in the result; the rest are only counted.
LISTED_OUTCOMES = 200
MAX_ID_LENGTH = 200
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class RowError:
    file: str
    #: The line the row starts on; line 1 is the header.
    line: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RowWarning:
    """A good row the policy will look at twice: a donor who is probably the same person as
    a lab-affiliated record (their gifts will be held, rule possible_match)."""

    file: str
    line: int
    message: str


@dataclass
class ImportResult:
    donors: int = 0
    affiliations: int = 0
    gifts: int = 0
    #: Screening outcomes of the imported gifts: accept / hold / reject -> count.
    outcomes: Counter = field(default_factory=Counter)
    #: (line, external_ref, outcome, reason) of the first held or rejected gifts.
    not_accepted: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: Affiliations that pulled already-recorded gifts back for review.
    rescreened: int = 0


class ImportAborted(LedgerError):
    """A row the ledger refused during the import; nothing was imported."""

    def __init__(self, file: str, line: int | None, message: str):
        super().__init__(f"{file} line {line}: {message}" if line else f"{file}: {message}")
        self.file = file
        self.line = line
        self.message = message


# --- reading ---------------------------------------------------------------------------------

def _read_rows(stream: IO[bytes], kind: str) -> Iterator[tuple[int, dict[str, str]] | RowError]:
    """Yield (line, {column: value}) per data row, or RowErrors. Reads the stream lazily.

    A problem that makes the rest of the file unreadable (wrong header, bad encoding,
    broken quoting) is reported once and ends the file.
    """
    spec = COLUMNS[kind]
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            yield RowError(kind, 1, ("the file is empty; the first line must name the columns",))
            return
        names = [h.strip().lower() for h in header]
        problems = []
        unknown = [n for n in names if n not in spec.all]
        if unknown:
            problems.append(f"unknown column(s): {', '.join(unknown)}; "
                            f"the columns are: {', '.join(spec.all)}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"column(s) named twice: {', '.join(repeated)}")
        missing = [n for n in spec.required if n not in names]
        if missing:
            problems.append(f"missing required column(s): {', '.join(missing)}")
        if problems:
            yield RowError(kind, 1, tuple(problems))
            return
        last_line = reader.line_num
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(names):
                yield RowError(kind, line, (f"expected {len(names)} fields, found {len(cells)}",))
                continue
            if any("\x00" in cell for cell in cells):
                yield RowError(kind, line, ("contains a NUL character",))
                continue
            yield line, {name: cell.strip() for name, cell in zip(names, cells, strict=True)}
    except UnicodeDecodeError:
        # Text is decoded ahead of the parser, so the line is approximate.
        yield RowError(kind, reader.line_num + 1,
                       ("the file is not UTF-8 text from about here on; save it as "
                        "\"CSV UTF-8\" and try again",))
    except csv.Error as error:
        yield RowError(kind, reader.line_num, (f"unreadable CSV from here on: {error}",))
    finally:
        text.detach()


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _reasons(error: ValidationError, rename: dict[str, str]) -> list[str]:
    reasons = []
    for loc, messages in field_errors(error).items():
        name = rename.get(loc, loc)
        for message in messages:
            reasons.append(message if name == "body" else f"{name}: {message}")
    return reasons


def _optional(values: dict[str, str], name: str) -> str | None:
    return values.get(name) or None


def _too_long(values: dict[str, str], name: str) -> list[str]:
    value = values.get(name, "")
    return [f"{name}: at most {MAX_ID_LENGTH} characters"] if len(value) > MAX_ID_LENGTH else []


def _boolean(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


# --- lookups ---------------------------------------------------------------------------------

class _Organizations(OrganizationNames):
    """Organisation names and aliases, case-insensitive. Loaded once: organisations are few."""

    def resolve(self, name: str) -> tuple[int | None, str | None]:
        ids = self.named_loosely(name)
        if len(ids) == 1:
            return ids[0], None
        if ids:
            return None, (f"{name!r} matches several organisations (ids "
                          f"{', '.join(map(str, sorted(ids)))}); use the exact name")
        # Never created on the fly: a new organisation's lab status must be set deliberately,
        # or a lab employee's gifts would escape the policy through a misspelt name.
        return None, f"no organisation named {name!r}; add it on the Organisations page first"


class _Codes:
    """Campaign, appeal and fund codes, read once (they are few): a gifts file names them by
    code. The same checks as campaigns.resolve_designation, in memory, so a bad row is
    reported in the check rather than aborting the import."""

    def __init__(self, session: Session):
        self.ids = {kind: dict(session.execute(select(model.code, model.id)).all())
                    for kind, model in campaigns.MODELS.items()}
        #: Closed ones take no new gifts (campaigns.resolve_designation, open_only).
        self.closed = {kind: set(session.execute(
            select(model.code).where(model.active.is_(False))).scalars())
            for kind, model in campaigns.MODELS.items()}
        self.appeal_campaign = dict(session.execute(
            select(Appeal.id, Appeal.campaign_id)).all())
        self.restricted = dict(session.execute(select(Fund.id, Fund.restricted)).all())

    def designation(self, values: dict[str, str]) -> tuple[dict[str, int], list[str]]:
        """({kind_id: id} for the codes the row names, [reasons for unknown codes])."""
        found, reasons = {}, []
        for kind in campaigns.MODELS:
            code = (values.get(kind) or "").strip().lower()
            if not code:
                continue
            if code in self.closed[kind]:
                reasons.append(f"{kind}: the {kind} {code!r} is closed: it takes no new gifts "
                               "(reopen it on the Campaigns page to import late ones)")
            elif code in self.ids[kind]:
                found[f"{kind}_id"] = self.ids[kind][code]
            else:
                reasons.append(f"{kind}: no {kind} with the code {code!r}; add it on the "
                               "Campaigns page first")
        return found, reasons

    def check(self, data: GiftCreate) -> list[str]:
        appeal_campaign = self.appeal_campaign.get(data.appeal_id)
        reasons = []
        if appeal_campaign is not None and data.campaign_id not in (None, appeal_campaign):
            reasons.append("appeal: the appeal belongs to another campaign than the one named")
        if data.fund_id is not None and data.purpose == "restricted" \
                and not self.restricted[data.fund_id]:
            reasons.append("fund: a gift for restricted purposes goes to a restricted fund")
        return reasons


@dataclass(frozen=True)
class _DonorRef:
    #: The donor's id if it is already in the ledger; None for a donor in this upload.
    donor_id: int | None
    type: str
    category: str


class _Staging:
    """The good rows, on disk, for the second pass."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path)
        self.db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE donor (line INTEGER PRIMARY KEY, external_id TEXT NOT NULL UNIQUE,
                                type TEXT NOT NULL, category TEXT NOT NULL, payload TEXT NOT NULL);
            CREATE TABLE donor_id (external_id TEXT PRIMARY KEY, donor_id INTEGER NOT NULL);
            CREATE TABLE donor_email (email TEXT PRIMARY KEY, line INTEGER NOT NULL);
            CREATE TABLE affiliation (line INTEGER PRIMARY KEY, donor_id INTEGER,
                                      donor_external_id TEXT NOT NULL, payload TEXT NOT NULL,
                                      same TEXT NOT NULL UNIQUE);
            CREATE TABLE gift (line INTEGER PRIMARY KEY, received_on TEXT NOT NULL,
                               external_ref TEXT NOT NULL UNIQUE, donor_id INTEGER,
                               donor_external_id TEXT NOT NULL, payload TEXT NOT NULL);
            CREATE INDEX gift_in_date_order ON gift (received_on, line);
        """)

    def close(self) -> None:
        self.db.close()

    def staged_donor(self, external_id: str) -> _DonorRef | None:
        row = self.db.execute("SELECT type, category FROM donor WHERE external_id = ?",
                              (external_id,)).fetchone()
        return _DonorRef(None, row[0], row[1]) if row else None

    _FIRST_LINE = {
        "donor": "SELECT line FROM donor WHERE external_id = ?",
        "affiliation": "SELECT line FROM affiliation WHERE same = ?",
        "gift": "SELECT line FROM gift WHERE external_ref = ?",
    }
    _COUNT = {
        "donors": "SELECT count(*) FROM donor",
        "affiliations": "SELECT count(*) FROM affiliation",
        "gifts": "SELECT count(*) FROM gift",
    }

    def first_line(self, table: str, key: str) -> int:
        """The line of the staged row that a repeated key first appeared on."""
        return self.db.execute(self._FIRST_LINE[table], (key,)).fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {kind: self.db.execute(sql).fetchone()[0] for kind, sql in self._COUNT.items()}


# --- the import ------------------------------------------------------------------------------

class CsvImport:
    """One upload: check its files, then (if every row is good) import them in one transaction.

        with CsvImport(session, today=..., reporting_currency="USD") as job:
            job.check("donors", stream)
            ...
            if not job.errors:
                result = job.run(actor, policy, files={...})
    """

    def __init__(self, session: Session, *, today: date, reporting_currency: str,
                 max_gift_minor: int = GIFT_CEILING_MINOR, policy: Policy | None = None,
                 progress: Callable[[str, int], None] | None = None):
        """policy: given, the check also lists donors of the upload who probably are a
        lab-affiliated record already on file (warnings). progress: called as rows are
        checked ("checking", rows read so far) and imported ("importing", rows written)."""
        self.session = session
        self.progress = progress or (lambda phase, done: None)
        self.policy = policy
        self.warnings: list[RowWarning] = []
        self._matches: MatchIndex | None = None
        self.today = today
        self.reporting_currency = reporting_currency
        self.max_gift_minor = max_gift_minor
        self.errors: list[RowError] = []
        #: Data rows read per file, good or bad.
        self.rows: Counter = Counter()
        self._orgs: _Organizations | None = None
        self._codes: _Codes | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._staging: _Staging | None = None

    def __enter__(self) -> CsvImport:
        self._tmp = tempfile.TemporaryDirectory(prefix="armslength-import-")
        self._staging = _Staging(Path(self._tmp.name) / "staging.sqlite3")
        return self

    def __exit__(self, *exc) -> None:
        if self._staging is not None:
            self._staging.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def staging(self) -> _Staging:
        if self._staging is None:
            raise RuntimeError("use CsvImport as a context manager")
        return self._staging

    @property
    def codes(self) -> _Codes:
        if self._codes is None:
            self._codes = _Codes(self.session)
        return self._codes

    @property
    def orgs(self) -> _Organizations:
        if self._orgs is None:
            self._orgs = _Organizations(self.session)
        return self._orgs

    def staged(self) -> dict[str, int]:
        """Good rows per file, waiting to be imported."""
        return self.staging.counts()

    # -- pass 1 --------------------------------------------------------------------------------

    def check(self, kind: str, stream: IO[bytes]) -> None:
        """Validate every row of one file; stage the good ones. Call in KINDS order."""
        checker = {"donors": self._check_donors, "affiliations": self._check_affiliations,
                   "gifts": self._check_gifts}[kind]
        for chunk in _chunks(_read_rows(stream, kind), CHUNK):
            rows = []
            for item in chunk:
                if isinstance(item, RowError):
                    self.errors.append(item)
                    if item.line > 1:
                        self.rows[kind] += 1
                else:
                    rows.append(item)
                    self.rows[kind] += 1
            if rows:
                checker(rows)
            self.progress("checking", sum(self.rows.values()))
        self.staging.db.commit()
        # The services read this session later; the check's reads must not pin a snapshot.
        self.session.rollback()

    def _fail(self, kind: str, line: int, reasons: list[str]) -> None:
        self.errors.append(RowError(kind, line, tuple(reasons)))

    def _db_donors(self, external_ids: set[str]) -> dict[str, _DonorRef]:
        """The recorded donors these external ids name. A record merged into another leads
        to the survivor (donor_merge): its later files (gifts, affiliations) belong to the one person."""
        found = {}
        survivor = Donor.__table__.alias("survivor")
        merge = DonorMerge.__table__
        for ids in _chunks(sorted(external_ids), CHUNK):
            for ext, donor_id, donor_type, category in self.session.execute(
                select(DonorExternalId.external_id,
                       func.coalesce(survivor.c.id, Donor.id),
                       func.coalesce(survivor.c.type, Donor.type),
                       func.coalesce(survivor.c.category, Donor.category))
                .join(Donor, Donor.id == DonorExternalId.donor_id)
                .outerjoin(merge, merge.c.duplicate_id == Donor.id)
                .outerjoin(survivor, survivor.c.id == merge.c.survivor_id)
                .where(one_of(self.session, DonorExternalId.external_id, ids))
            ):
                found[ext] = _DonorRef(donor_id, donor_type, category)
        return found

    def _db_emails(self, rows: list[tuple[int, dict[str, str]]]) -> dict[str, tuple[int, str]]:
        """Normalised e-mail -> (id, name) of the recorded person donor with it (a merged
        record's survivor), for the person rows of a chunk: one indexed IN query."""
        keys = {email_key(values.get("email")) for _, values in rows
                if values.get("type", "").lower() == "person"} - {None}
        if not keys:
            return {}
        survivor = Donor.__table__.alias("survivor")
        merge = DonorMerge.__table__
        found: dict[str, tuple[int, str]] = {}
        for key, donor_id, name in self.session.execute(
            select(Donor.email_key, func.coalesce(survivor.c.id, Donor.id),
                   func.coalesce(survivor.c.name, Donor.name))
            .outerjoin(merge, merge.c.duplicate_id == Donor.id)
            .outerjoin(survivor, survivor.c.id == merge.c.survivor_id)
            .where(one_of(self.session, Donor.email_key, keys), Donor.type == "person")
            .order_by(Donor.id)
        ):
            found.setdefault(key, (donor_id, name))
        return found

    def _donor_ref(self, external_id: str, in_db: dict[str, _DonorRef]) -> _DonorRef | None:
        return in_db.get(external_id) or self.staging.staged_donor(external_id)

    def _check_donors(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        in_db = self._db_donors({values["external_id"] for _, values in rows})
        emails = self._db_emails(rows)
        for line, values in rows:
            ext = values["external_id"]
            reasons = [] if ext else ["external_id: required"]
            reasons += _too_long(values, "external_id")
            if ext in in_db:
                reasons.append(f"external_id {ext!r} was imported before (donor "
                               f"{in_db[ext].donor_id}); this donor is already recorded")
            org_id = None
            if values.get("organization"):
                org_id, why = self.orgs.resolve(values["organization"])
                if why:
                    reasons.append(f"organization: {why}")
                elif values["type"].lower() == "person":
                    reasons.append("organization: only an organisation donor names the organisation "
                                   "it is; record a person's employer in affiliations.csv")
            payload = {"type": values["type"].lower(), "name": values["name"],
                       "email": _optional(values, "email"),
                       "phone": _optional(values, "phone"),
                       "postal_address": _optional(values, "postal_address"),
                       "category": (_optional(values, "category") or "").lower() or None,
                       "organization_id": org_id}
            data = None
            try:
                data = DonorCreate.model_validate(payload)
            except ValidationError as error:
                reasons += _reasons(error, {"organization_id": "organization"})
            if data is not None and data.type == "person":
                reasons += self._same_email(line, email_key(data.email), emails)
            if reasons or data is None:
                self._fail("donors", line, reasons)
                continue
            self._warn_possible_matches(line, data)
            try:
                self.staging.db.execute(
                    "INSERT INTO donor (line, external_id, type, category, payload) VALUES (?,?,?,?,?)",
                    (line, ext, data.type, data.category, data.model_dump_json()),
                )
            except sqlite3.IntegrityError:
                first = self.staging.first_line("donor", ext)
                self._fail("donors", line, [f"external_id {ext!r} repeats line {first}"])

    def _same_email(self, line: int, key: str | None,
                    recorded: dict[str, tuple[int, str]]) -> list[str]:
        """A person row whose e-mail is a recorded donor's, or an earlier row's: probably the
        same person, which a second record would screen apart (parties.create_donor refuses
        it too). An import never creates such a donor; a reviewer can, on the donor form."""
        if key is None:
            return []
        if key in recorded:
            donor_id, name = recorded[key]
            return [f"email: a donor with this e-mail address is already recorded: this is "
                    f"probably {name} (donor {donor_id}); use that donor's external id, or "
                    "leave this row out"]
        first = self.staging.db.execute("SELECT line FROM donor_email WHERE email = ?",
                                        (key,)).fetchone()
        if first is not None:
            return [f"email: the same e-mail address as the donor on line {first[0]}: "
                    "probably the same person"]
        self.staging.db.execute("INSERT INTO donor_email (email, line) VALUES (?, ?)",
                                (key, line))
        return []

    def _warn_possible_matches(self, line: int, data: DonorCreate) -> None:
        """The same matching as the door's, against the candidates read once per import."""
        if self.policy is None or data.type != "person":
            return
        if self._matches is None:
            self._matches = MatchIndex(self.session)
        settings = self.policy.settings["possible_match"]
        row = rows_new(Donor, **new_donor_values(data))
        for fact in self._matches(row):
            score = match_score(
                Signals(fact.name_similarity, fact.same_email, fact.same_phone,
                        fact.same_address, fact.same_initial),
                phone_bonus=settings["phone_bonus"], address_bonus=settings["address_bonus"],
                initial_score=settings.get("initial_score"))
            if score >= settings["threshold"] and not fact.different:
                labs = sorted({a.organization for a in fact.affiliations if a.covered})
                self.warnings.append(RowWarning("donors", line, (
                    f"probably {fact.record} {fact.record_id} {fact.name} (score {score_text(score)}, "
                    f"at {', '.join(labs)}): this donor's gifts will be held for a reviewer "
                    "(possible_match)")))

    def _check_affiliations(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        in_db = self._db_donors({values["donor_external_id"] for _, values in rows})
        for line, values in rows:
            ext = values["donor_external_id"]
            reasons = [] if ext else ["donor_external_id: required"]
            donor = self._donor_ref(ext, in_db) if ext else None
            if ext and donor is None:
                reasons.append(f"donor_external_id: no donor {ext!r} in this upload's donors file "
                               "or imported before")
            elif donor is not None and donor.type != "person":
                reasons.append("donor_external_id: affiliations link a person to an organisation; "
                               f"{ext!r} is an organisation donor")
            org_id, why = (None, "required")
            if values["organization"]:
                org_id, why = self.orgs.resolve(values["organization"])
            if why:
                reasons.append(f"organization: {why}")
            senior = _boolean(values["senior_decision_maker"])
            if senior is None:
                # No default: leaving a senior decision-maker unmarked would let their gifts in.
                reasons.append("senior_decision_maker: must be true or false (yes/no, 1/0)")
            payload = {"organization_id": org_id or 0,
                       "kind": (_optional(values, "kind") or "employee").lower(),
                       "title": _optional(values, "title"), "senior_decision_maker": bool(senior),
                       "start_date": values["start_date"], "end_date": _optional(values, "end_date")}
            data = None
            try:
                data = AffiliationCreate.model_validate(payload)
            except ValidationError as error:
                reasons += _reasons(error, {"organization_id": "organization"})
            if not reasons and data is not None and donor is not None and donor.donor_id is not None:
                existing = self.session.execute(
                    select(Affiliation.id).where(
                        Affiliation.donor_id == donor.donor_id,
                        Affiliation.organization_id == data.organization_id,
                        Affiliation.kind == data.kind,
                        Affiliation.start_date == data.start_date,
                    ).limit(1)
                ).scalar_one_or_none()
                if existing is not None:
                    reasons.append(f"this affiliation is already recorded (affiliation {existing})")
            if reasons or data is None:
                self._fail("affiliations", line, reasons)
                continue
            same = f"{ext}|{data.organization_id}|{data.kind}|{data.start_date.isoformat()}"
            try:
                self.staging.db.execute(
                    "INSERT INTO affiliation (line, donor_id, donor_external_id, payload, same) "
                    "VALUES (?,?,?,?,?)",
                    (line, donor.donor_id, ext, data.model_dump_json(), same),
                )
            except sqlite3.IntegrityError:
                first = self.staging.first_line("affiliation", same)
                self._fail("affiliations", line, [f"repeats the affiliation on line {first}"])

    def _check_gifts(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        in_db = self._db_donors({values["donor_external_id"] for _, values in rows})
        refs = {values["external_ref"] for _, values in rows if values["external_ref"]}
        recorded = {ref: gift_id for (_, ref), gift_id
                    in recorded_payment_ids(self.session, {"external_ref": refs}).items()}
        for line, values in rows:
            ref, ext = values["external_ref"], values["donor_external_id"]
            reasons = [] if ref else ["external_ref: required (it is what makes a re-import safe)"]
            reasons += _too_long(values, "external_ref")
            if ref in recorded:
                reasons.append(f"external_ref {ref!r} is already recorded (gift {recorded[ref]}): "
                               "duplicate")
            donor = self._donor_ref(ext, in_db) if ext else None
            if not ext:
                reasons.append("donor_external_id: required")
            elif donor is None:
                reasons.append(f"donor_external_id: no donor {ext!r} in this upload's donors file "
                               "or imported before")
            elif donor.category == "daf_sponsor":
                reasons.append("donor_external_id: a grant from a donor-advised fund must be "
                               "attributed to its advisor; record it on the gift form instead")
            designation, why = self.codes.designation(values)
            reasons += why
            payload = {"donor_id": 0, "amount": values["amount"], "currency": values["currency"],
                       "received_on": values["received_on"],
                       "kind": (_optional(values, "kind") or "cash").lower(),
                       "purpose": (_optional(values, "purpose") or "general").lower(),
                       "method": _optional(values, "method") or "other",
                       "fx_rate": _optional(values, "fx_rate"),
                       "description": _optional(values, "description"),
                       "external_ref": ref or None, **designation}
            data = None
            try:
                data = GiftCreate.model_validate(payload)
            except ValidationError as error:
                reasons += _reasons(error, {"donor_id": "donor_external_id"})
            if data is not None:
                reasons += self._gift_rules(data)
                if not why:
                    reasons += self.codes.check(data)
            if reasons or data is None:
                self._fail("gifts", line, reasons)
                continue
            stored = data.model_dump(exclude={"donor_id"}, exclude_none=True, mode="json")
            try:
                self.staging.db.execute(
                    "INSERT INTO gift (line, received_on, external_ref, donor_id, donor_external_id,"
                    " payload) VALUES (?,?,?,?,?,?)",
                    (line, data.received_on.isoformat(), ref, donor.donor_id, ext, json.dumps(stored)),
                )
            except sqlite3.IntegrityError:
                first = self.staging.first_line("gift", ref)
                self._fail("gifts", line, [f"external_ref {ref!r} repeats line {first}"])

    def _gift_rules(self, data: GiftCreate) -> list[str]:
        """What record_gift would refuse about the row itself, found now rather than mid-import."""
        reasons = []
        if data.received_on > self.today:
            reasons.append(f"received_on: {data.received_on.isoformat()} is in the future; "
                           "this import is for gifts already received")
        if data.currency == self.reporting_currency:
            if data.fx_rate not in (None, "1"):
                reasons.append("fx_rate: leave it empty (or 1) for the reporting currency")
        elif data.fx_rate is None:
            reasons.append(f"fx_rate: required when the currency is not {self.reporting_currency}")
        if not reasons:
            try:
                reporting_amount(data, self.reporting_currency, self.max_gift_minor)
            except ValidationFailed as error:
                reasons += [f"{field}: {message}" for field, messages in error.errors.items()
                            for message in messages]
        return reasons

    # -- pass 2 --------------------------------------------------------------------------------

    def run(self, actor: Actor, policy: Policy, files: dict[str, str], *,
            job_id: int | None = None,
            before_commit: Callable[[ImportResult], None] | None = None) -> ImportResult:
        """Import every staged row in one transaction; raise ImportAborted and keep nothing
        if the ledger refuses any of them.

        job_id: the background job doing it, named in the audit entry. before_commit: called
        with the result inside the transaction, so that what it writes (the job's "done")
        commits with the import or not at all."""
        if self.errors:
            raise RuntimeError("the files have bad rows; nothing may be imported")
        session, db = self.session, self.staging.db
        result = ImportResult()
        written = 0
        with ledger_batch(session):
            staged = db.execute("SELECT line, external_id, payload FROM donor ORDER BY line")
            for chunk in _chunks(staged, CHUNK):
                lines = [line for line, _ext, _payload in chunk]
                ids = self._ledger("donors", None, create_donors, session,
                                   [DonorCreate.model_validate_json(p) for _l, _e, p in chunk],
                                   actor, tags=lines)
                pairs = [(ext, donor_id) for (_l, ext, _p), donor_id in zip(chunk, ids, strict=True)]
                insert_many(session, DonorExternalId,
                            [{"external_id": ext, "donor_id": donor_id} for ext, donor_id in pairs])
                db.executemany("INSERT INTO donor_id (external_id, donor_id) VALUES (?, ?)", pairs)
                result.donors += len(ids)
                written += len(ids)
                self.progress("importing", written)
            for line, donor_id, payload in db.execute(
                "SELECT a.line, coalesce(a.donor_id, d.donor_id), a.payload FROM affiliation a "
                "LEFT JOIN donor_id d ON d.external_id = a.donor_external_id ORDER BY a.line"
            ):
                data = AffiliationCreate.model_validate_json(payload)
                _aff, rescreened = self._ledger("affiliations", line, add_affiliation, session,
                                                donor_id, data, actor, policy)
                result.affiliations += 1
                result.rescreened += len(rescreened)
                written += 1
                self.progress("importing", written)
            with GiftIntake(session, actor, policy, self.reporting_currency,
                            max_gift_minor=self.max_gift_minor, open_only=True) as intake:
                intake.prefetch(donor_id for (donor_id,) in db.execute(
                    "SELECT DISTINCT coalesce(g.donor_id, d.donor_id) FROM gift g "
                    "LEFT JOIN donor_id d ON d.external_id = g.donor_external_id"))
                for line, donor_id, payload in db.execute(
                    "SELECT g.line, coalesce(g.donor_id, d.donor_id), g.payload FROM gift g "
                    "LEFT JOIN donor_id d ON d.external_id = g.donor_external_id "
                    "ORDER BY g.received_on, g.line"
                ):
                    data = GiftCreate.model_validate({**json.loads(payload), "donor_id": donor_id})
                    screened = self._ledger("gifts", line, intake.record, data, tag=line)
                    self._count(result, line, data, screened.evaluation)
                    written += 1
                    self.progress("importing", written)
                self._ledger("gifts", None, intake.flush)
            details = {
                "files": files,
                "donors": result.donors,
                "affiliations": result.affiliations,
                "gifts": result.gifts,
                "outcomes": dict(result.outcomes),
                "rescreened_gifts": result.rescreened,
            }
            if job_id is not None:
                details["job_id"] = job_id
            audit.append(session, actor, "import.completed", "import", None, details)
            if before_commit is not None:
                before_commit(result)
        return result

    @staticmethod
    def _count(result: ImportResult, line: int, data: GiftCreate, evaluation) -> None:
        outcome = evaluation.outcome
        result.gifts += 1
        result.outcomes[outcome] += 1
        if outcome != "accept" and len(result.not_accepted) < LISTED_OUTCOMES:
            fired = [r["message"] for r in evaluation.reasons() if r["fired"]]
            result.not_accepted.append((line, data.external_ref, outcome, "; ".join(fired)))

    @staticmethod
    def _ledger(kind: str, line: int | None, service, *args, **kwargs):
        try:
            return service(*args, **kwargs)
        except RowRefused as error:  # one of many written together: its own line
            raise ImportAborted(kind, error.tag, str(error)) from error
        except (LedgerError, IllegalTransition) as error:
            raise ImportAborted(kind, line, str(error)) from error
