"""Rosters: people known to work at covered labs who are not donors.

A roster is a CSV file (name, title, organisation, start, end, source; optionally
senior_decision_maker), from public leadership pages, filings or the press. Every row is
checked first; one bad row refuses the whole file (nothing half-written). Entries are
matched against donors and gifts like lab-affiliated donors (app.ledger.identity); adding
them is a tightening change, so it takes effect at once and past gifts of donors who
probably are one of them are re-screened and held for a reviewer, as a late affiliation's.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlmodel import Session

from app.db import rows
from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, row_hashes
from app.ledger.audit import Actor
from app.ledger.identity import covered_organization_ids, roster_keys
from app.ledger.parties import rescreen_person
from app.ledger.search import OrganizationNames
from models import Decision, Donor, IdentityVerdict, Organization, RosterEntry
from models.schemas import RosterEntryCreate, field_errors
from policies import Policy
from policies.identity import Identity, Signals, match_score, score_text, signals

REQUIRED = ("name", "organisation", "start", "source")
OPTIONAL = ("title", "end", "senior_decision_maker")
#: "organization" is read as "organisation".
SPELLINGS = {"organization": "organisation"}
MAX_ROWS = 10_000
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


def _organisation(names: OrganizationNames, text: str) -> int | str:
    """The organisation's id, or why there is none. Exact name or alias first, then the
    name without legal forms and punctuation ("Halcyon Labs, Inc.")."""
    ids = names.named_loosely(text)
    if len(ids) == 1:
        return ids[0]
    if ids:
        return f"{text!r} matches several organisations (ids {', '.join(map(str, ids))})"
    return f"no organisation named {text!r}; add it on the Organisations page first"


def read_roster(session: Session, text: str) -> list[RosterEntryCreate]:
    """Every row of the file as a RosterEntryCreate, or ValidationFailed naming each bad
    line ("line 3": [reasons])."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        raise ValidationFailed({"file": ["the file is empty; the first line must name the "
                                         "columns: " + ", ".join(REQUIRED + OPTIONAL)]})
    names = [SPELLINGS.get(h.strip().lower(), h.strip().lower()) for h in header]
    problems = []
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if len(set(names)) != len(names):
        problems.append("a column is named twice")
    if problems:
        raise ValidationFailed({"line 1": problems})
    orgs = OrganizationNames(session)
    entries, errors = [], {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(entries) + len(errors) >= MAX_ROWS:
                raise ValidationFailed({"file": [f"at most {MAX_ROWS} rows per roster"]})
            if len(cells) != len(names):
                errors[f"line {line}"] = [f"expected {len(names)} fields, found {len(cells)}"]
                continue
            values = {n: c.strip() for n, c in zip(names, cells, strict=True)}
            reasons = []
            org = _organisation(orgs, values["organisation"]) \
                if values["organisation"] else "required"
            if isinstance(org, str):
                reasons.append(f"organisation: {org}")
            senior = values.get("senior_decision_maker", "").lower()
            if senior not in _TRUE | _FALSE:
                reasons.append("senior_decision_maker: must be true or false (yes/no, 1/0)")
            try:
                entry = RosterEntryCreate.model_validate({
                    "name": values["name"], "title": values.get("title") or None,
                    "organization_id": org if isinstance(org, int) else 0,
                    "start_date": values["start"], "end_date": values.get("end") or None,
                    "source": values["source"], "senior_decision_maker": senior in _TRUE})
            except ValidationError as error:
                reasons += [f"{field}: {m}" for field, ms in field_errors(error).items()
                            for m in ms]
                entry = None
            if reasons or entry is None:
                errors[f"line {line}"] = reasons
            else:
                entries.append(entry)
    except (csv.Error, ValueError) as error:
        if isinstance(error, ValidationFailed):
            raise
        errors["file"] = [f"unreadable CSV: {error}"]
    if errors:
        raise ValidationFailed(errors)
    if not entries:
        raise ValidationFailed({"file": ["the file has no rows"]})
    return entries


def import_roster(session: Session, entries: list[RosterEntryCreate], actor: Actor,
                  policy: Policy, *, file_name: str | None = None
                  ) -> tuple[list[RosterEntry], list[Decision]]:
    """Store the entries and re-screen past gifts of donors who are probably one of them
    (at a covered lab, dated while the role counts). One transaction; audited."""
    with ledger_write(session):
        stored = []
        for data in entries:
            stored.append(rows.insert(session, rows.new(
                RosterEntry, **data.model_dump(), **roster_keys(data.name),
                created_by_id=actor.user_id)))
        rescreened = _rescreen_matching_donors(session, stored, policy, actor)
        # Names are personal data: the append-only audit trail records counts and ids only.
        audit.append(session, actor, "roster.imported", "roster_entry", None, {
            "file": file_name, "entries": len(stored),
            "entry_ids": [e.id for e in stored],
            "rescreened_gift_ids": [d.gift_id for d in rescreened]}, sealed=stored)
    return stored, rescreened


#: A roster entry's fields as RosterEntryCreate has them (what an edit may change).
ROSTER_FIELDS = ("name", "title", "organization_id", "start_date", "end_date",
                 "senior_decision_maker", "source")


def roster_values(entry: RosterEntry) -> dict:
    return {k: getattr(entry, k) for k in ROSTER_FIELDS}


def roster_entry(session: Session, entry_id: int) -> RosterEntry:
    entry = session.get(RosterEntry, entry_id)
    if entry is None:
        raise NotFound("roster entry", entry_id)
    return entry


def update_roster_entry(session: Session, entry_id: int, data: RosterEntryCreate, actor: Actor,
                        policy: Policy) -> tuple[RosterEntry, list[Decision]]:
    """Change a roster entry (a correction, an end date once the person left) and re-screen
    past gifts of donors who are probably the person as it now reads, as an import does.
    Edits by people come through app.ledger.changes, which holds back what weakens."""
    with ledger_write(session):
        entry = roster_entry(session, entry_id)
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        new = data.model_dump()
        changed = [k for k in ROSTER_FIELDS if getattr(entry, k) != new[k]]
        if not changed:
            return entry, []
        before = {k: getattr(entry, k) for k in changed if k != "name"}
        for key in changed:
            setattr(entry, key, new[key])
        for key, value in roster_keys(entry.name).items():
            setattr(entry, key, value)
        session.flush()
        rescreened = _rescreen_matching_donors(session, [entry], policy, actor)
        # The name is personal data: the append-only audit trail says it changed, not to what.
        audit.append(session, actor, "roster.changed", "roster_entry", entry.id, {
            "changed": changed,
            "before": {k: v.isoformat() if hasattr(v, "isoformat") else v
                       for k, v in before.items()},
            "after": {k: new[k].isoformat() if hasattr(new[k], "isoformat") else new[k]
                      for k in changed if k != "name"},
            "rescreened_gift_ids": [d.gift_id for d in rescreened]}, sealed=[entry])
    return entry, rescreened


def remove_roster_entry(session: Session, entry_id: int, actor: Actor) -> None:
    """Delete a roster entry (one recorded by mistake). A reviewer's recorded answer about it
    (same or different person) refers to it: such an entry is ended instead."""
    with ledger_write(session):
        entry = roster_entry(session, entry_id)
        answered = session.execute(select(IdentityVerdict.id).where(
            IdentityVerdict.roster_entry_id == entry_id).limit(1)).first()
        if answered is not None:
            raise NotAllowed(f"roster entry {entry_id} has a reviewer's answer about who it "
                             "is: set its end date instead of deleting it")
        values = roster_values(entry)
        session.delete(entry)
        session.flush()
        audit.append(session, actor, "roster.removed", "roster_entry", entry_id, {
            "organization_id": values["organization_id"],
            "start_date": values["start_date"].isoformat(),
            "end_date": values["end_date"].isoformat() if values["end_date"] else None,
            "senior_decision_maker": values["senior_decision_maker"]},
            sealed=row_hashes.removed_all(RosterEntry, entry_id))


def _rescreen_matching_donors(session: Session, entries: list[RosterEntry], policy: Policy,
                              actor: Actor) -> list[Decision]:
    covered = covered_organization_ids(session)
    settings = policy.settings["possible_match"]
    decisions: list[Decision] = []
    for entry in entries:
        keys = [k for k in (entry.name_key_a, entry.name_key_b) if k]
        if entry.organization_id not in covered or not keys:
            continue
        donors = session.execute(select(Donor).where(
            Donor.type == "person",
            or_(Donor.name_key_a.in_(keys), Donor.name_key_b.in_(keys))).order_by(Donor.id)
        ).scalars().all()
        for donor in donors:
            sig: Signals = signals(Identity(donor.name, donor.email, donor.phone,
                                            donor.postal_address), Identity(entry.name))
            score = match_score(sig, phone_bonus=settings["phone_bonus"],
                                address_bonus=settings["address_bonus"])
            if score < settings["threshold"]:  # a new entry has no verdicts yet
                continue
            last = (entry.end_date + timedelta(days=policy.cooling_off_days - 1)
                    if entry.end_date else None)
            decisions += rescreen_person(
                session, donor.id, [(entry.start_date, last)], policy, actor,
                f"Roster entry {entry.id} recorded: donor {donor.id} is probably "
                f"{entry.name} (score {score_text(score)}); recorded by {actor.label}.")
    return decisions
