"""Organisations, donors, affiliations and in-kind arrangements.

Changing an affiliation re-screens the person's affected gifts in the same
transaction: each gets a new `hold` decision and waits for a reviewer.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlmodel import Session

from app.db import rows
from app.db.locking import ledger_write
from app.db.lookups import one_of
from app.errors import NotAllowed, NotFound, ProbablySamePerson, RowRefused, ValidationFailed
from app.ledger import audit, funding, row_hashes
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.identity import donor_keys, refresh_possibly_covered
from app.ledger.reviews import hold_for_rescreen
from models import (
    Affiliation,
    Attribution,
    Decision,
    Donor,
    DonorMerge,
    Gift,
    InKindArrangement,
    Organization,
    utcnow,
)
from models.schemas import (
    AffiliationCreate,
    DonorCreate,
    DonorUpdate,
    InKindCreate,
    OrganizationCreate,
)
from policies import Policy
from policies.identity import email_key, organization_key


def create_organization(session: Session, data: OrganizationCreate, actor: Actor) -> Organization:
    with ledger_write(session):
        if data.parent_id is not None and session.get(Organization, data.parent_id) is None:
            raise ValidationFailed({"parent_id": ["no such organisation"]})
        clash = session.execute(
            select(Organization.id).where(Organization.name == data.name)
        ).scalar_one_or_none()
        if clash is not None:
            raise ValidationFailed({"name": [f"an organisation with this name exists (id {clash})"]})
        refuse_names_of_another(session, data, None)
        org = Organization(name=data.name, covered_lab=data.covered_lab, aliases=data.aliases,
                           parent_id=data.parent_id)
        session.add(org)
        session.flush()
        audit.append(session, actor, "organization.created", "organization", org.id,
                     data.model_dump(), sealed=[org])
    return org


def _family(session: Session, org_id: int) -> set[int]:
    """The organisation and every organisation below it (affiliates, their affiliates...)."""
    family = {org_id}
    frontier = {org_id}
    while frontier:
        children = set(session.execute(
            select(Organization.id).where(Organization.parent_id.in_(frontier))
        ).scalars()) - family
        family |= children
        frontier = children
    return family


def update_organization(session: Session, org_id: int, data: OrganizationCreate, actor: Actor,
                        policy: Policy) -> tuple[Organization, list[Decision]]:
    """Change an organisation. If that changes whether it or its affiliates are covered
    (the covered_lab flag or the parent), past gifts whose screening rested on the old
    answer are re-screened and held for review, in the same transaction:

    - gifts of people affiliated to an organisation whose coverage changed, dated
      while that affiliation counted (start .. end + cooling-off);
    - every gift of an organisation donor that is, or is an affiliate of, such an
      organisation (its corporate and matching gifts).

    Both directions are re-screened: a gift accepted as ordinary money may now be lab
    money, and a gift counted as lab-employee money may no longer be.
    """
    with ledger_write(session):
        org, family = check_organization_update(session, org_id, data)
        was_covered = CoveredOrganizations(session)
        before_coverage = {i: was_covered.covered(i) for i in family}
        new = data.model_dump()
        before = {key: getattr(org, key) for key in new}
        if before == new:
            return org, []
        for key, value in new.items():
            setattr(org, key, value)
        session.flush()
        if (before["covered_lab"], before["parent_id"]) != (org.covered_lab, org.parent_id):
            refresh_possibly_covered(session, organization_id=org.id)
        now_covered = CoveredOrganizations(session)
        changed = sorted(i for i in family if now_covered.covered(i) != before_coverage[i])
        rescreened = _rescreen_for_coverage(
            session, changed, policy, actor,
            _coverage_note(session, org, before, changed, now_covered, actor),
        )
        audit.append(session, actor, "organization.changed", "organization", org.id, {
            "before": before, "after": new, "coverage_changed": changed,
            "coverage_changed_names": [now_covered.name(i) for i in changed],
            "rescreened_gift_ids": [d.gift_id for d in rescreened],
        }, sealed=[org])
    return org, rescreened


def check_organization_update(session: Session, org_id: int,
                              data: OrganizationCreate) -> tuple[Organization, set[int]]:
    """The organisation and its family, or the reason `data` cannot be its new values."""
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("organization", org_id)
    family = _family(session, org_id)
    if data.parent_id is not None:
        if session.get(Organization, data.parent_id) is None:
            raise ValidationFailed({"parent_id": ["no such organisation"]})
        if data.parent_id in family:
            raise ValidationFailed({"parent_id": [
                "an organisation cannot sit under itself or one of its own affiliates"
            ]})
    clash = session.execute(
        select(Organization.id).where(Organization.name == data.name, Organization.id != org_id)
    ).scalar_one_or_none()
    if clash is not None:
        raise ValidationFailed({"name": [f"an organisation with this name exists (id {clash})"]})
    refuse_names_of_another(session, data, org_id)
    return org, family


def refuse_names_of_another(session: Session, data: OrganizationCreate,
                            own_id: int | None) -> None:
    """Refuse a name or alias that, compared as names are matched (case, punctuation and
    legal forms aside: organization_key), is already another organisation's name or alias.
    Imports, rosters and the donate form find organisations by such names: a decoy
    "Halcyon Labs, Inc." beside the covered "Halcyon Labs" would catch their employees'
    affiliations and let lab money pass as ordinary money."""
    wanted = {organization_key(data.name): "name"}
    for alias in data.aliases or []:
        wanted.setdefault(organization_key(alias), "aliases")
    wanted.pop("", None)
    others = session.execute(
        select(Organization.id, Organization.name, Organization.aliases)
        .where(Organization.id != own_id) if own_id is not None else
        select(Organization.id, Organization.name, Organization.aliases)
    ).all()
    errors: dict[str, list[str]] = {}
    for other_id, name, aliases in others:
        for known in [name, *(aliases or [])]:
            field = wanted.get(organization_key(known))
            if field is not None:
                errors.setdefault(field, []).append(
                    f"{name} (id {other_id}) already goes by “{known}”: one organisation per "
                    "name, or imports could attach people to the wrong one")
    if errors:
        raise ValidationFailed(errors)


def _by_whom(actor: Actor) -> str:
    """The actor as a note names them: the user's e-mail without the channel ("api:")."""
    return actor.label.split(":", 1)[-1]


def _today_by(actor: Actor) -> str:
    return f"on {utcnow().date().isoformat()} by {_by_whom(actor)}"


def _coverage_note(session: Session, org: Organization, before: dict, changed: list[int],
                   covered: CoveredOrganizations, actor: Actor) -> str:
    """Why a coverage change pulled gifts back, in names: what was changed on the
    organisation, then each organisation whose coverage now differs."""
    if before["covered_lab"] != org.covered_lab:
        what = f"{org.name} was {'marked' if org.covered_lab else 'unmarked as'} a covered lab"
    else:
        old_parent = session.get(Organization, before["parent_id"]) if before["parent_id"] else None
        new_parent = session.get(Organization, org.parent_id) if org.parent_id else None
        what = (f"{org.name} was moved from under {old_parent.name if old_parent else 'no parent'} "
                f"to under {new_parent.name if new_parent else 'no parent'}")
    effects = [
        f"{covered.name(i)} {'is now' if covered.covered(i) else 'is no longer'} covered"
        + ("" if i == org.id else f" (an affiliate of {org.name})")
        for i in changed
    ]
    return f"{what} {_today_by(actor)}: {'; '.join(effects)}."


def _affiliation_words(session: Session, aff: Affiliation | AffiliationCreate) -> str:
    """"employee at Halcyon Labs (Vice President, senior decision-maker) from 2024-01-01 to
    2025-06-30": the organisation by name, never by id, so a reviewer can read it."""
    org = session.get(Organization, aff.organization_id)
    role = ", ".join(filter(None, [aff.title,
                                   "senior decision-maker" if aff.senior_decision_maker else None]))
    until = f" to {aff.end_date.isoformat()}" if aff.end_date else ""
    return (f"{aff.kind} at {org.name}{f' ({role})' if role else ''} "
            f"from {aff.start_date.isoformat()}{until}")


def _rescreen_for_coverage(session: Session, org_ids: list[int], policy: Policy, actor: Actor,
                           why: str) -> list[Decision]:
    if not org_ids:
        return []
    ranges: dict[int, list[tuple[date, date | None]]] = {}
    for aff in session.execute(
        select(Affiliation).where(Affiliation.organization_id.in_(org_ids))
    ).scalars():
        ranges.setdefault(aff.donor_id, []).append(_affected_range(aff, policy))
    for donor_id in session.execute(
        select(Donor.id).where(Donor.organization_id.in_(org_ids))
    ).scalars():
        ranges.setdefault(donor_id, []).append((date.min, None))
    gifts: dict[int, Gift] = {}
    for donor_id in sorted(ranges):
        for gift in _gifts_to_rescreen(session, donor_id, ranges[donor_id]):
            gifts.setdefault(gift.id, gift)  # a joint gift is held once, not once per giver
    ordered = sorted(gifts.values(), key=lambda g: (g.received_on, g.id))
    return [hold_for_rescreen(session, gift, policy, actor, why) for gift in ordered]


#: Who may confirm that a new donor sharing an e-mail address with a recorded one is a
#: different person (app.auth.roles' "review" permission; the ledger cannot import it).
CONFIRMING_ROLES = ("reviewer", "admin")


def same_email_donors(session: Session, email: str | None, *,
                      exclude: int | None = None) -> list[tuple[int, str]]:
    """(id, name) of the person donors whose normalised e-mail is this one's, lowest id first:
    one lookup on ix_donor_email_key. A merged record stands for its survivor."""
    key = email_key(email)
    if key is None:
        return []
    found = session.execute(
        select(Donor.id, DonorMerge.survivor_id)
        .outerjoin(DonorMerge, DonorMerge.duplicate_id == Donor.id)
        .where(Donor.email_key == key, Donor.type == "person")
        .order_by(Donor.id)
    ).all()
    ids = list(dict.fromkeys(merged_into or donor_id for donor_id, merged_into in found))
    ids = [i for i in ids if i != exclude]
    if not ids:
        return []
    names = dict(session.execute(select(Donor.id, Donor.name).where(Donor.id.in_(ids))).all())
    return [(i, names[i]) for i in ids]


def merged_into(session: Session, donor_id: int) -> int | None:
    """The donor a merged record was merged into (app.ledger.merge); None for a live one."""
    merge = session.get(DonorMerge, donor_id)
    return merge.survivor_id if merge else None


def _refuse_same_email(session: Session, data: DonorCreate | DonorUpdate, *,
                       exclude: int | None = None) -> None:
    same = same_email_donors(session, data.email, exclude=exclude)
    if same:
        raise ProbablySamePerson(*same[0])


def create_donor(session: Session, data: DonorCreate, actor: Actor, *,
                 different_person_from: int | None = None, reason: str | None = None) -> Donor:
    """A new donor. A person whose normalised e-mail is already a person donor's is refused
    (ProbablySamePerson: a second record would be screened apart from the first, and the
    senior or cap rules walked around), unless a reviewer confirms it is a different person
    (`different_person_from`: the recorded donor they compared it with; `reason`: why),
    which the audit entry records."""
    with ledger_write(session):
        _check_new_donor(data, lambda org_id: session.get(Organization, org_id) is not None)
        confirmed = None
        if data.type == "person":
            same = same_email_donors(session, data.email)
            if same and different_person_from is None:
                raise ProbablySamePerson(*same[0])
            if same:
                confirmed = _confirm_different(same, different_person_from, reason, actor)
        donor = rows.insert(session, rows.new(Donor, **new_donor_values(data)))
        entry = _created_entry(donor)
        if confirmed:
            entry = {**entry, **confirmed}
        audit.append(session, actor, "donor.created", "donor", donor.id, entry, sealed=[donor])
    return donor


def _confirm_different(same: list[tuple[int, str]], different_from: int, reason: str | None,
                       actor: Actor) -> dict:
    if actor.role not in CONFIRMING_ROLES:
        raise NotAllowed("only a reviewer or an admin may confirm that a donor sharing an "
                         "e-mail address with a recorded one is a different person")
    if different_from not in {donor_id for donor_id, _ in same}:
        raise ProbablySamePerson(*same[0])  # compared with another record than the one found
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why this is a different person"]})
    return {"different_person_from": different_from,
            "same_email_donor_ids": [donor_id for donor_id, _ in same],
            "reason": reason.strip()}


def create_donors(session: Session, items: list[DonorCreate], actor: Actor, *,
                  tags: list | None = None) -> list[int]:
    """create_donor for many donors (an import's): the same checks, every donor checked
    before any is written, then one bulk INSERT for the donors and one for their audit
    entries. Returns the new ids in order. A refused donor raises RowRefused with its tag
    (its position in `items` if no tags are given)."""
    with ledger_write(session):
        wanted = {d.organization_id for d in items if d.organization_id is not None}
        known = set(session.execute(select(Organization.id).where(
            one_of(session, Organization.id, wanted))).scalars()) if wanted else set()
        seen: dict[str, int] = {}
        for i, data in enumerate(items):
            try:
                _check_new_donor(data, known.__contains__)
                if data.type == "person":
                    _refuse_same_email(session, data)
                    key = email_key(data.email)
                    if key is not None and key in seen:
                        first = f"line {tags[seen[key]]}" if tags else f"item {seen[key]}"
                        raise ValidationFailed({"email": [
                            f"the same e-mail address as the donor on {first}: probably the "
                            "same person"]})
                    if key is not None:
                        seen[key] = i
            except (ValidationFailed, ProbablySamePerson) as error:
                raise RowRefused(tags[i] if tags else i, error) from error
        values = [rows.values_of(rows.new(Donor, **new_donor_values(d))) for d in items]
        ids = rows.bulk_insert(session, Donor, values, return_ids=True)
        audit.append_many(session, actor, [
            ("donor.created", "donor", donor_id, {"type": v["type"], "category": v["category"]},
             row_hashes.seals_of_values(Donor, {**v, "id": donor_id}))
            for donor_id, v in zip(ids, values, strict=True)
        ])
    return ids


def _check_new_donor(data: DonorCreate, organization_exists) -> None:
    if data.organization_id is not None:
        if data.type != "organization":
            raise ValidationFailed({"organization_id": [
                "only an organisation donor is an organisation; record a person's "
                "employer as an affiliation"
            ]})
        if not organization_exists(data.organization_id):
            raise ValidationFailed({"organization_id": ["no such organisation"]})


def new_donor_values(data: DonorCreate) -> dict:
    return {"type": data.type, "name": data.name, "email": data.email,
            "organization_id": data.organization_id, "category": data.category,
            "anonymous": data.anonymous, "public_name_consent": data.public_name_consent,
            "phone": data.phone,
            "postal_address": data.postal_address,
            **donor_keys(data.name, data.email, data.phone)}


def _created_entry(donor: Donor) -> dict:
    """The data of a "donor.created" audit entry: never personal data (see below)."""
    return {"type": donor.type, "category": donor.category}


#: Donor facts that are personal data. The audit trail is append-only and hash-chained, so
#: it records that these changed but never their values: erasure on request stays possible.
_PERSONAL_FIELDS = ("name", "email", "phone", "postal_address")


def update_donor(session: Session, donor_id: int, data: DonorUpdate, actor: Actor) -> Donor:
    """Change a donor's name, email, category or public anonymity.

    None of these facts feeds the independence rules for past gifts (the category
    matters only when a gift is recorded), so nothing is re-screened. The funding mix
    shows money credited to organisations by their category now, so a category change
    moves the donor's credits (funding.move_credits).
    """
    with ledger_write(session):
        donor = session.get(Donor, donor_id)
        if donor is None:
            raise NotFound("donor", donor_id)
        if donor.type == "person" and data.category != "individual":
            raise ValidationFailed({"category": ["a person's category is 'individual'"]})
        if donor.type == "organization" and data.category == "individual":
            raise ValidationFailed({"category": ["an organisation cannot have category 'individual'"]})
        new = data.model_dump()
        # A form or client without these fields keeps them.
        for key in ("phone", "postal_address", "public_name_consent"):
            if key not in data.model_fields_set:
                new.pop(key)
        changed = [key for key, value in new.items() if getattr(donor, key) != value]
        if not changed:
            return donor
        merged = session.get(DonorMerge, donor.id)
        if merged is not None:
            raise NotAllowed(f"donor {donor.id} was merged into donor {merged.survivor_id}; "
                             "change that record")
        if ("email" in changed and donor.type == "person"
                and email_key(data.email) != donor.email_key):
            # Changing the address to another person's would make the same second record
            # that creating one with it is refused for.
            _refuse_same_email(session, data, exclude=donor.id)
        before = {k: getattr(donor, k) for k in changed if k not in _PERSONAL_FIELDS}
        if "category" in changed:
            funding.move_credits(session, donor.id, donor.category, new["category"])
        for key in changed:
            setattr(donor, key, new[key])
        # The blocking keys follow the name, e-mail and phone (app.ledger.identity).
        for key, value in donor_keys(donor.name, donor.email, donor.phone).items():
            setattr(donor, key, value)
        session.flush()
        audit.append(session, actor, "donor.changed", "donor", donor.id, {
            "changed": changed,
            "before": before,
            "after": {k: new[k] for k in changed if k not in _PERSONAL_FIELDS},
        }, sealed=[donor])
    return donor


def _affected_range(aff: Affiliation, policy: Policy) -> tuple[date, date | None]:
    """Gift dates on which this affiliation counts: start .. end + cooling-off."""
    if aff.end_date is None:
        return aff.start_date, None
    return aff.start_date, aff.end_date + timedelta(days=policy.cooling_off_days - 1)


def _gifts_to_rescreen(session: Session, donor_id: int,
                       ranges: list[tuple[date, date | None]]) -> list[Gift]:
    """Accepted or held gifts given by, or attributed to, the donor within the ranges."""
    conditions = []
    for first, last in ranges:
        cond = Gift.received_on >= first
        if last is not None:
            cond = cond & (Gift.received_on <= last)
        conditions.append(cond)
    if not conditions:
        return []
    attributed = select(Attribution.gift_id).where(Attribution.donor_id == donor_id)
    return list(session.execute(
        select(Gift)
        .where(
            or_(Gift.donor_id == donor_id, Gift.id.in_(attributed)),
            Gift.status.in_(("accepted", "held")),
            or_(*conditions),
        )
        .order_by(Gift.received_on, Gift.id)
    ).scalars().all())


def rescreen_person(session: Session, donor_id: int, ranges: list[tuple[date, date | None]],
                    policy: Policy, actor: Actor, why: str) -> list[Decision]:
    """Hold every accepted or held gift of the person dated within the ranges."""
    gifts = _gifts_to_rescreen(session, donor_id, ranges)
    return [hold_for_rescreen(session, gift, policy, actor, why) for gift in gifts]


def add_affiliation(session: Session, donor_id: int, data: AffiliationCreate, actor: Actor,
                    policy: Policy) -> tuple[Affiliation, list[Decision]]:
    with ledger_write(session):
        donor = session.get(Donor, donor_id)
        if donor is None:
            raise NotFound("donor", donor_id)
        if donor.type != "person":
            raise ValidationFailed({"donor_id": ["affiliations link a person to an organisation"]})
        survivor = merged_into(session, donor_id)
        if survivor is not None:  # it would count for nobody: the record holds no gifts now
            raise ValidationFailed({"donor_id": [
                f"donor {donor_id} was merged into donor {survivor}; add it there"]})
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        aff = Affiliation(donor_id=donor_id, **data.model_dump())
        session.add(aff)
        session.flush()
        refresh_possibly_covered(session, donor_ids=[donor_id])
        audit.append(session, actor, "affiliation.added", "donor", donor_id,
                     {"affiliation_id": aff.id, **data.model_dump(),
                      "organization": session.get(Organization, aff.organization_id).name},
                     sealed=[aff])
        rescreened = []
        if CoveredOrganizations(session).covered(aff.organization_id):
            why = (f"Affiliation recorded: {donor.name}, {_affiliation_words(session, aff)}; "
                   f"recorded {_today_by(actor)}.")
            rescreened = rescreen_person(session, donor_id, [_affected_range(aff, policy)],
                                         policy, actor, why)
            if aff.senior_decision_maker:
                rescreened += _rescreen_household(session, donor_id, aff, policy, actor, why,
                                                  rescreened)
    return aff, rescreened


def _rescreen_household(session: Session, donor_id: int, aff: Affiliation, policy: Policy,
                        actor: Actor, why: str, done: list[Decision]) -> list[Decision]:
    """A senior role at a covered lab: their spouse's, partner's or household's gifts while
    it counts, where the household rule now fires (app.ledger.relationships)."""
    from app.ledger import relationships  # it reads this module's re-screening helpers

    return relationships.rescreen_relatives(session, donor_id, [_affected_range(aff, policy)],
                                            policy, actor, why, {d.gift_id for d in done})


def update_affiliation(session: Session, affiliation_id: int, data: AffiliationCreate,
                       actor: Actor, policy: Policy) -> tuple[Affiliation, list[Decision]]:
    with ledger_write(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        covered = CoveredOrganizations(session)
        ranges = []
        if covered.covered(aff.organization_id):
            ranges.append(_affected_range(aff, policy))
        before = {k: getattr(aff, k) for k in data.model_dump()}
        if before == data.model_dump():
            return aff, []  # nothing changed: no facts to re-screen gifts against
        was = _affiliation_words(session, aff)
        for key, value in data.model_dump().items():
            setattr(aff, key, value)
        session.flush()
        refresh_possibly_covered(session, donor_ids=[aff.donor_id])  # its organisation may change
        if covered.covered(aff.organization_id):
            ranges.append(_affected_range(aff, policy))
        audit.append(session, actor, "affiliation.changed", "donor", aff.donor_id,
                     {"affiliation_id": aff.id, "before": before, "after": data.model_dump()},
                     sealed=[aff])
        donor = session.get(Donor, aff.donor_id)
        why = (f"Affiliation changed: {donor.name}, {was}, is now "
               f"{_affiliation_words(session, aff)}; changed {_today_by(actor)}.")
        rescreened = rescreen_person(session, aff.donor_id, ranges, policy, actor, why)
        if aff.senior_decision_maker and covered.covered(aff.organization_id):
            rescreened += _rescreen_household(session, aff.donor_id, aff, policy, actor, why,
                                              rescreened)
    return aff, rescreened


def remove_affiliation(session: Session, affiliation_id: int, actor: Actor,
                       policy: Policy) -> list[Decision]:
    """Delete an affiliation recorded in error. The person's gifts it could have stopped
    (its dated range, at a covered organisation) are re-screened and held for review."""
    with ledger_write(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        donor = session.get(Donor, aff.donor_id)
        words = _affiliation_words(session, aff)
        ranges = ([_affected_range(aff, policy)]
                  if CoveredOrganizations(session).covered(aff.organization_id) else [])
        removed = {k: getattr(aff, k) for k in AffiliationCreate.model_fields}
        session.delete(aff)
        session.flush()
        refresh_possibly_covered(session, donor_ids=[donor.id])
        audit.append(session, actor, "affiliation.removed", "donor", donor.id,
                     {"affiliation_id": affiliation_id, **removed},
                     sealed=[row_hashes.removed(Affiliation, affiliation_id)])
        rescreened = rescreen_person(
            session, donor.id, ranges, policy, actor,
            f"Affiliation removed: {donor.name}, {words}; removed {_today_by(actor)}.",
        ) if ranges else []
    return rescreened


def in_kind_values(item: InKindArrangement) -> dict:
    """What an edit of the arrangement may change (app.ledger.weakening.IN_KIND_FIELDS)."""
    return {"organization_id": item.organization_id, "description": item.description,
            "purpose": item.purpose, "start_date": item.start_date, "end_date": item.end_date,
            "estimated_value_minor": item.estimated_value_minor, "currency": item.currency}


def update_in_kind(session: Session, item_id: int, values: dict,
                   actor: Actor) -> InKindArrangement:
    """Set the arrangement's fields to `values` (in_kind_values' keys). Callers decide what
    may apply at once (app.ledger.changes.propose_in_kind_change)."""
    with ledger_write(session):
        item = session.get(InKindArrangement, item_id)
        if item is None:
            raise NotFound("in-kind arrangement", item_id)
        if session.get(Organization, values["organization_id"]) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        if values["end_date"] is not None and values["end_date"] < values["start_date"]:
            raise ValidationFailed({"end_date": ["must not be before the start date"]})
        before = in_kind_values(item)
        for key, value in values.items():
            setattr(item, key, value)
        session.flush()
        changed = sorted(k for k in values if values[k] != before[k])
        audit.append(session, actor, "in_kind.updated", "in_kind_arrangement", item.id, {
            "organization_id": item.organization_id, "changed": changed,
            "start_date": item.start_date.isoformat(),
            "end_date": item.end_date.isoformat() if item.end_date else None,
        }, sealed=[item])
    return item


def create_in_kind(session: Session, data: InKindCreate, actor: Actor) -> InKindArrangement:
    with ledger_write(session):
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        item = InKindArrangement(
            organization_id=data.organization_id, description=data.description,
            purpose=data.purpose, start_date=data.start_date, end_date=data.end_date,
            estimated_value_minor=data.estimated_value_minor, currency=data.currency,
        )
        session.add(item)
        session.flush()
        audit.append(session, actor, "in_kind.recorded", "in_kind_arrangement", item.id,
                     data.model_dump(), sealed=[item])
    return item
