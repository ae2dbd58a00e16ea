"""The one door for money. Every gift from every channel is recorded here.

record_gift() gathers the facts, asks the policy, and writes the gift, its
attributions, its decision, its place in the daily funding totals and an audit
entry in one locked transaction. GiftIntake (app.ledger.intake) records many gifts
in one batch; both screen a new gift with screen_new_gift(). Nothing else inserts
gifts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db import org_today, rows
from app.db.locking import ledger_write
from app.db.lookups import one_of
from app.errors import Duplicate, NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, funding, pledges, row_hashes, windows
from app.ledger.audit import Actor
from app.ledger.campaigns import Designation, insert_designation, resolve_designation
from app.ledger.facts import (
    DONOR_WITH_AFFILIATIONS,
    HAS_RELATIONSHIPS,
    Affiliations,
    CoveredOrganizations,
    Matcher,
    Relatives,
    Share,
    donor_with_affiliations,
    donor_with_affiliations_from_columns,
    gift_facts,
    with_declared,
)
from app.ledger.refund_reversals import latest_reversal_day
from app.ledger.tributes import tribute_values
from models import (
    OUTCOME_STATUS,
    Attribution,
    AuditEntry,
    Decision,
    Donor,
    DonorMerge,
    Gift,
    GiftTribute,
    Pledge,
    PolicyVersion,
    Refund,
    transition,
)
from models.money import GIFT_CEILING_MINOR, convert, display_amount, format_amount, parse_rate
from models.schemas import PPM, GiftCreate, TributeIn
from policies import (
    AffiliationFact,
    Evaluation,
    FundingFacts,
    GiftFacts,
    Policy,
    evaluate,
    lab_employee_minor,
)


@dataclass(frozen=True)
class PaymentRefs:
    """Processor ids that make a payment unique (Stripe's)."""

    stripe_payment_intent_id: str | None = None
    stripe_checkout_session_id: str | None = None
    stripe_invoice_id: str | None = None


@dataclass(frozen=True)
class Recorded:
    gift: Gift
    decision: Decision
    evaluation: Evaluation
    #: The gift's attributions as written (empty for a dry run).
    shares: tuple[Share, ...] = ()
    #: Its campaign, appeal and fund (None: it names none).
    designation: Designation | None = None
    #: In honour or memory of whom (None: no tribute).
    tribute: TributeIn | None = None


#: The gift columns no two gifts share (each unique in the table too): the caller's own
#: reference and the processor's ids. In this order a gift's first clash is reported.
PAYMENT_ID_COLUMNS = ("external_ref", "stripe_payment_intent_id", "stripe_checkout_session_id",
                      "stripe_invoice_id")

#: "Is this one id recorded already?", one statement per column, built once (the door's
#: hot path: building a statement per gift cost more than running it).
_ONE_ID_LOOKUPS = {
    column: select(Gift.id).where(getattr(Gift, column) == bindparam("value"))
    for column in PAYMENT_ID_COLUMNS
}


def payment_ids(data: GiftCreate, refs: PaymentRefs) -> dict[str, str]:
    """The unique ids a new gift carries, by column (PAYMENT_ID_COLUMNS order)."""
    given = (data.external_ref, refs.stripe_payment_intent_id, refs.stripe_checkout_session_id,
             refs.stripe_invoice_id)
    return {column: value for column, value in zip(PAYMENT_ID_COLUMNS, given, strict=True)
            if value is not None}


def recorded_payment_ids(session: Session, wanted: dict[str, Collection[str]]
                         ) -> dict[tuple[str, str], int]:
    """Which of these ids ({column: values}) gifts already carry: {(column, value): gift id}.
    One statement per column, however many values."""
    found: dict[tuple[str, str], int] = {}
    for column, values in wanted.items():
        if not values:
            continue
        if len(values) == 1:
            (value,) = values
            gift_id = session.execute(_ONE_ID_LOOKUPS[column], {"value": value}).scalar()
            if gift_id is not None:
                found[column, value] = gift_id
            continue
        field = getattr(Gift, column)
        for value, gift_id in session.execute(
                select(field, Gift.id).where(one_of(session, field, values))):
            found[column, value] = gift_id
    return found


def _check_unique(session: Session, data: GiftCreate, refs: PaymentRefs) -> None:
    for column, value in payment_ids(data, refs).items():
        # Column by column, stopping at the first clash: most gifts carry one id.
        existing = recorded_payment_ids(session, {column: (value,)})
        if existing:
            raise Duplicate(column, existing[column, value])


def reporting_amount(data: GiftCreate, reporting_currency: str,
                     max_gift_minor: int = GIFT_CEILING_MINOR) -> tuple[int, str, str]:
    """The gift in the reporting currency's minor units, with the rate and its source.
    Refuses a gift above max_gift_minor (never above the ceiling that keeps every sum of
    money inside a 64-bit integer: models.money.GIFT_CEILING_MINOR)."""
    if data.currency == reporting_currency:
        if data.fx_rate not in (None, "1"):
            raise ValidationFailed({"fx_rate": ["must be omitted (or 1) for the reporting currency"]})
        reporting, rate, source = data.amount_minor, "1", "identity"
    else:
        if data.fx_rate is None:
            raise ValidationFailed(
                {"fx_rate": [f"required when the currency is not {reporting_currency}"]}
            )
        parsed = parse_rate(data.fx_rate)
        reporting = convert(data.amount_minor, data.currency, parsed, reporting_currency)
        rate, source = str(parsed), data.fx_source or "supplied"
    maximum = min(max_gift_minor, GIFT_CEILING_MINOR)
    if reporting > maximum:
        converted = "" if data.currency == reporting_currency else \
            f" ({display_amount(reporting, reporting_currency)} at the rate given)"
        raise ValidationFailed({"amount": [
            f"{display_amount(data.amount_minor, data.currency)}{converted} is more than the "
            f"largest gift recorded here, {display_amount(maximum, reporting_currency)}"
        ]})
    return reporting, rate, source


def shares_of(session: Session, data: GiftCreate, donor: Donor) -> list[Share]:
    errors: dict[str, list[str]] = {}
    if data.attributions:
        for i, a in enumerate(data.attributions):
            if session.get(Donor, a.donor_id) is None:
                errors.setdefault(f"attributions.{i}.donor_id", []).append("no such donor")
        if errors:
            raise ValidationFailed(errors)
        basis = "daf_advisor" if donor.category == "daf_sponsor" else "explicit"
        return [Share(a.donor_id, a.fraction_ppm, basis) for a in data.attributions]
    if donor.category == "daf_sponsor":
        raise ValidationFailed({"attributions": [
            "a grant from a donor-advised fund must be attributed to its advisor"
        ]})
    basis = "employer_match" if data.matching_gift_for else "donor"
    return [Share(donor.id, PPM, basis)]


def share_credits(session: Session, shares: list[Share], payer: Donor) -> funding.Credits:
    """What a new gift credits to organisations (funding.credits_of), from the categories of
    the donors its shares name: the payer's, or (a DAF grant, explicit shares) theirs."""
    categories = {share.donor_id: payer.category if share.donor_id == payer.id
                  else session.get(Donor, share.donor_id).category for share in shares}
    return funding.credits_of(shares, categories)


def _refuse_merged_donors(session: Session, data: GiftCreate, donor: Donor,
                          errors: dict[str, list[str]]) -> None:
    """A record merged into another (app.ledger.merge) has no affiliations left: a gift on it
    would be screened apart from the person it is. One indexed read for the payer and every
    attributed donor."""
    ids = {donor.id, *(a.donor_id for a in data.attributions or ())}
    merged = dict(session.execute(
        select(DonorMerge.duplicate_id, DonorMerge.survivor_id)
        .where(DonorMerge.duplicate_id.in_(ids))
    ).all())
    if not merged:
        return
    if donor.id in merged:
        errors["donor_id"] = [f"donor {donor.id} was merged into donor {merged[donor.id]}; "
                              "record the gift on that donor"]
    for i, a in enumerate(data.attributions or ()):
        if a.donor_id in merged:
            errors.setdefault(f"attributions.{i}.donor_id", []).append(
                f"donor {a.donor_id} was merged into donor {merged[a.donor_id]}")


def validate_links(session: Session, data: GiftCreate, donor: Donor, *,
                   merges_checked: bool = False) -> None:
    """merges_checked: the payer and attributed donors were found unmerged by a read whose
    facts are known to be current (prepare_gift, checked under the lock)."""
    errors: dict[str, list[str]] = {}
    # Every channel passes here: a gift is recorded once received, never ahead of time
    # (a promise of money to come is a pledge). Today is the organisation's date.
    today = org_today(session)
    if data.received_on > today:
        errors["received_on"] = [f"{data.received_on.isoformat()} is after today "
                                 f"({today.isoformat()}); a gift is recorded once received"]
    if data.matching_gift_for is not None:
        matched = session.get(Gift, data.matching_gift_for)
        if matched is None:
            errors["matching_gift_for"] = ["no such gift"]
        elif donor.type != "organization":
            errors["matching_gift_for"] = ["a matching gift comes from an organisation donor"]
    if not merges_checked:
        _refuse_merged_donors(session, data, donor, errors)
    if data.pledge_id is not None:
        pledge = session.get(Pledge, data.pledge_id)
        if pledge is None:
            errors["pledge_id"] = ["no such pledge"]
        elif pledge.donor_id != donor.id:
            errors["pledge_id"] = ["the pledge belongs to another donor"]
        elif pledge.currency != data.currency:
            errors["currency"] = [f"pledge payments are in the pledge currency {pledge.currency}"]
        elif pledge.state == "cancelled":
            errors["pledge_id"] = ["the pledge is cancelled"]
    if errors:
        raise ValidationFailed(errors)


def screen_new_gift(
    session: Session,
    data: GiftCreate,
    donor: Donor,
    affiliations: Affiliations,
    policy: Policy,
    reporting_currency: str,
    refs: PaymentRefs,
    actor: Actor,
    *,
    check_unique: Callable[[GiftCreate, PaymentRefs], None],
    funding_facts: Callable[[date], FundingFacts],
    covered: CoveredOrganizations | None = None,
    max_gift_minor: int = GIFT_CEILING_MINOR,
    declared: dict[int, AffiliationFact] | None = None,
    matcher: Matcher | None = None,
    relatives: Relatives | None = None,
    payer_relatives: tuple | None = None,
    open_only: bool = False,
) -> tuple[Gift, list[Share], Evaluation, Designation | None]:
    """The screening of a new gift, the same in record_gift and GiftIntake: check its links,
    designation and payment ids, build its shares and its (pending, unsaved) row, gather the
    policy's facts and evaluate them. Returns (gift, shares, evaluation, designation);
    gift.lab_minor is set.

    The two callers differ only in where the payment ids are checked (check_unique: the
    database, or the batch in memory) and where the funding windows of a date come from
    (funding_facts: the database, or the batch's FundingMemory). affiliations: the payer's,
    as donor_with_affiliations() read them. max_gift_minor: the largest gift this channel
    records (reporting_amount). declared: roles typed on the donate form, by donor id,
    screened as if true (facts.with_declared). matcher: who else each donor may be (a
    batch's MatchIndex; else a MatchFinder queries per donor). relatives: whom each donor is
    related to (a batch's RelativeIndex; else a RelativeFinder queries per donor);
    payer_relatives: () when the caller's first read found the payer has none. open_only:
    a new gift from staff, which may not name a closed campaign, appeal or fund.
    """
    validate_links(session, data, donor)
    designation = resolve_designation(session, data, open_only=open_only)
    check_unique(data, refs)
    shares = shares_of(session, data, donor)
    gift = new_gift(data, donor, reporting_currency, refs, actor, max_gift_minor)
    facts = with_declared(facts_of_gift(session, gift, donor, shares, affiliations, covered,
                                        matcher, payer_relatives, relatives), declared)
    evaluation = evaluate_and_set_lab_part(policy, gift, facts, funding_facts(gift.received_on))
    return gift, shares, evaluation, designation


def screen_gift(session: Session, gift: Gift, shares: list[Share], policy: Policy) -> Evaluation:
    """Evaluate a stored gift (not counted in funding) against the ledger as it stands, and
    set its lab part to what the evaluation computed (a reviewer's decision, a re-screen)."""
    donor = session.get(Donor, gift.donor_id)
    facts = facts_of_gift(session, gift, donor, shares)
    return evaluate_and_set_lab_part(
        policy, gift, facts, windows.funding_facts(session, gift.received_on, policy.window_days))


def facts_of_gift(session: Session, gift: Gift, donor: Donor, shares: list[Share],
                  payer_affiliations: Affiliations | None = None,
                  covered: CoveredOrganizations | None = None,
                  matcher: Matcher | None = None,
                  payer_relatives: tuple | None = None,
                  relatives: Relatives | None = None) -> GiftFacts:
    """The policy's facts about a gift not yet counted: its payer and attributed donors."""
    return gift_facts(
        session,
        donor=donor,
        shares=shares,
        received_on=gift.received_on,
        reporting_amount_minor=gift.reporting_amount_minor,
        reporting_currency=gift.reporting_currency,
        kind=gift.kind,
        purpose=gift.purpose,
        is_matching_gift=gift.matching_gift_for_id is not None,
        payer_affiliations=payer_affiliations,
        covered=covered,
        matcher=matcher,
        payer_relatives=payer_relatives,
        relatives=relatives,
    )


def evaluate_and_set_lab_part(policy: Policy, gift: Gift, facts: GiftFacts,
                              funding_facts: FundingFacts) -> Evaluation:
    """The policy's verdict on a gift, and gift.lab_minor set to the lab-employee part the
    same facts give: it is what the gift adds to the funding if it is accepted. Every
    screening, one gift or a batch, a new gift or a stored one, ends here."""
    evaluation = evaluate(policy, facts, funding_facts)
    gift.lab_minor = lab_employee_minor(facts, policy.cooling_off_days)
    return evaluation


def stored_shares(session: Session, gift_id: int) -> list[Share]:
    stored = session.execute(select(Attribution).where(Attribution.gift_id == gift_id)).scalars()
    return [Share(a.donor_id, a.fraction_ppm, a.basis) for a in stored]


def apply_outcome(session: Session, gift: Gift, outcome: str) -> None:
    """Move the gift to the status the outcome implies, keeping funding totals in step."""
    new_status = OUTCOME_STATUS[outcome]
    was_counted = gift.counts_as_funding
    if gift.status != new_status:
        transition(gift, new_status)
    if was_counted and not gift.counts_as_funding:
        raise NotAllowed("use remove_from_funding before moving a counted gift")  # pragma: no cover
    if gift.counts_as_funding and not was_counted:
        funding.add_to_funding(session, gift)


def add_decision(
    session: Session,
    gift: Gift,
    outcome: str,
    evaluation: Evaluation,
    *,
    kind: str,
    actor: Actor,
    note: str | None = None,
    approved_by_id: int | None = None,
    public_note: str | None = None,
) -> Decision:
    # Written at once, one INSERT (see rows): the caller's audit entry names its id.
    return rows.insert(session, rows.new(
        Decision, **decision_values(gift.id, outcome, evaluation, kind=kind, actor=actor,
                                    note=note, approved_by_id=approved_by_id),
        public_note=public_note))


def decision_values(gift_id: int | None, outcome: str, evaluation: Evaluation, *, kind: str,
                    actor: Actor, note: str | None = None,
                    approved_by_id: int | None = None) -> dict:
    """A decision row's columns: the verdict with its rules, reasons, figures and version."""
    return {
        "gift_id": gift_id,
        "outcome": outcome,
        "kind": kind,
        "policy_version": evaluation.policy_version,
        "reasons": evaluation.reasons(),
        "figures": evaluation.figures,
        "note": note,
        "decided_by_id": actor.user_id,
        "approved_by_id": approved_by_id,
    }


def set_screened_status(gift: Gift, evaluation: Evaluation) -> None:
    """Give a new gift its screening's outcome: the status it is inserted with (one INSERT,
    no UPDATE after it) and whether it belongs in the disclosure."""
    gift.disclose = evaluation.disclose
    transition(gift, OUTCOME_STATUS[evaluation.outcome])


def recorded_entry(gift: Gift, decision_id: int, policy_version: str,
                   designation: Designation | None = None) -> dict:
    """The data of a new gift's "gift.recorded" audit entry (its designation's ids, if any)."""
    return {
        **(designation.entry() if designation is not None else {}),
        "donor_id": gift.donor_id,
        "amount": format_amount(gift.amount_minor, gift.currency),
        "currency": gift.currency,
        "received_on": gift.received_on,
        "status": gift.status,
        "decision_id": decision_id,
        "policy_version": policy_version,
    }


def new_gift(data: GiftCreate, donor: Donor, reporting_currency: str, refs: PaymentRefs,
              actor: Actor, max_gift_minor: int = GIFT_CEILING_MINOR) -> Gift:
    reporting, rate, source = reporting_amount(data, reporting_currency, max_gift_minor)
    return rows.new(
        Gift,
        donor_id=donor.id,
        amount_minor=data.amount_minor,
        currency=data.currency,
        reporting_amount_minor=reporting,
        reporting_currency=reporting_currency,
        fx_rate=rate,
        fx_source=source,
        received_on=data.received_on,
        method=data.method,
        kind=data.kind,
        purpose=data.purpose,
        description=data.description,
        status="pending",
        pledge_id=data.pledge_id,
        matching_gift_for_id=data.matching_gift_for,
        external_ref=data.external_ref,
        stripe_payment_intent_id=refs.stripe_payment_intent_id,
        stripe_checkout_session_id=refs.stripe_checkout_session_id,
        stripe_invoice_id=refs.stripe_invoice_id,
        created_by_id=actor.user_id,
        goods_description=(data.goods_or_services.description
                           if data.goods_or_services is not None else None),
        goods_value_minor=data.goods_value_minor,
    )


@dataclass
class PreparedGift:
    """What a gift's screening reads about people, read before the ledger lock.

    The donor with its affiliations, the shares, and the policy's facts (affiliations,
    covered labs, identity matches, roster entries, merges) depend on no other gift: only
    on records that ledger writes of other kinds change, each under the lock and each with
    an audit entry of its own (donor.*, affiliation.*, organization.*, donor.merged,
    roster.imported, policy.*, ...). So record_gift can use them if, under the lock, no
    audit entry other than "gift.recorded" was appended since they were read: one EXISTS
    over the entries after `audit_mark`, in the statement that reads the chain's head
    anyway. That is sound because entries are appended only under the lock (the chain
    needs it: each names the previous one's hash), so their ids follow commit order: a
    write not yet committed when the mark was read gets an id above it. The mark is read
    first, the facts after it (PostgreSQL: later statements, fresher snapshots; SQLite:
    one snapshot). Otherwise (some other write came in between) it reads everything again
    under the lock, as it always did. Deny by default: any new kind of audited write, from any
    path, sends the gift down the full path; only gifts themselves do not.

    Everything that depends on other gifts stays under the lock: the funding windows, the
    payment ids' uniqueness, the matched gift and the pledge, the audit chain.
    """

    data: GiftCreate
    refs: PaymentRefs
    declared: dict[int, AffiliationFact] | None
    #: The policy in force when the facts were read (a new version is audited too), and
    #: how to read the one in force under the lock if the facts turn out stale.
    policy: Policy
    policy_now: Callable[[Session], Policy]
    donor: Donor
    shares: list[Share]
    gift: Gift
    facts: GiftFacts
    #: The id of the newest audit entry when the facts were read (0: none yet).
    audit_mark: int
    #: Its campaign, appeal and fund, checked (their writes are audited too).
    designation: Designation | None = None
    #: Checked as a new gift from staff: no closed campaign, appeal or fund.
    open_only: bool = False


#: The donor with its affiliations, and the id of the newest audit entry, in one statement
#: (one snapshot): every fact prepare_gift reads after it is at least as new as the mark.
#: With them, two facts that were a statement each: the policy version in force (its id;
#: each version's document is parsed once per process) and the record the donor was merged
#: into, if any (donor_merge's key is the duplicate's id: at most one).
_PREPARE_READ = DONOR_WITH_AFFILIATIONS.add_columns(
    select(func.coalesce(func.max(AuditEntry.id), 0)).scalar_subquery().label("audit_mark"),
    HAS_RELATIONSHIPS,
    select(func.max(PolicyVersion.id)).scalar_subquery().label("policy_version_id"),
    select(DonorMerge.survivor_id).where(DonorMerge.duplicate_id == bindparam("donor_id"))
    .scalar_subquery().label("merged_into"),
)

#: Under the lock: the chain's head, and whether anything but a gift was audited since the
#: prepared facts were read.
_HEAD_AND_CHANGES = select(
    audit.HEAD_SUBQUERY.label("audit_head"),
    exists().where(AuditEntry.id > bindparam("audit_mark"),
                   AuditEntry.action != "gift.recorded").label("changed"),
)


def prepare_gift(session: Session, data: GiftCreate, actor: Actor, reporting_currency: str,
                 policy_now: Callable[[Session], Policy], *, refs: PaymentRefs = PaymentRefs(),  # noqa: B008 - frozen dataclass
                 max_gift_minor: int = GIFT_CEILING_MINOR,
                 declared: dict[int, AffiliationFact] | None = None,
                 policy_at: Callable[[Session, int | None], Policy] | None = None,
                 open_only: bool = False,
                 ) -> PreparedGift | None:
    """Read a gift's facts about people before taking the ledger lock (see PreparedGift),
    in the session's current (read) transaction. None when the gift has a problem of its
    own (no such donor, a merged donor, bad shares, too large): record_gift then screens it
    entirely under the lock and reports the problem exactly as it always has. The donor is
    attached to no session (built from the read's columns), so that taking the lock (which
    expires what the session holds) does not make it read the donor again.
    policy_at (PolicyCache.at): the policy of the version id read with the donor, saving a
    read of the policy; without it policy_now reads the one in force."""
    # On the session's connection (nothing is pending before the lock): plain columns, the
    # objects built from them without the ORM's loading and identity map.
    found = session.connection().execute(_PREPARE_READ, {"donor_id": data.donor_id}).all()
    donor, affiliations = donor_with_affiliations_from_columns(found)
    if donor is None:
        return None
    mark = found[0].audit_mark
    policy = (policy_now(session) if policy_at is None
              else policy_at(session, found[0].policy_version_id))
    if found[0].merged_into is not None:
        return None
    if data.attributions:  # the attributed donors' merges, too
        errors: dict[str, list[str]] = {}
        _refuse_merged_donors(session, data, donor, errors)
        if errors:
            return None
    try:
        shares = shares_of(session, data, donor)
        gift = new_gift(data, donor, reporting_currency, refs, actor, max_gift_minor)
        designation = resolve_designation(session, data, open_only=open_only)
    except ValidationFailed:
        return None
    # A donor with no relationship (most) costs no read of them: the first read said so.
    payer_relatives = None if found[0].has_relationships else ()
    facts = with_declared(facts_of_gift(session, gift, donor, shares, affiliations,
                                        payer_relatives=payer_relatives), declared)
    return PreparedGift(data, refs, declared, policy, policy_now, donor, shares, gift, facts,
                        mark, designation, open_only)


#: The door's first read under the lock, one statement where it would be three: the donor,
#: its affiliations with their organisations (for the policy's facts) and the head of the
#: audit chain, which this gift's audit entry extends.
_FIRST_READ = DONOR_WITH_AFFILIATIONS.add_columns(audit.HEAD_SUBQUERY.label("audit_head"),
                                                  HAS_RELATIONSHIPS)


def record_gift(
    session: Session,
    data: GiftCreate | None,
    actor: Actor,
    policy: Policy,
    reporting_currency: str,
    *,
    refs: PaymentRefs = PaymentRefs(),  # noqa: B008 - frozen dataclass, safe default
    dry_run: bool = False,
    max_gift_minor: int = GIFT_CEILING_MINOR,
    declared: dict[int, AffiliationFact] | None = None,
    prepared: PreparedGift | None = None,
    provisional: Callable[[Session], tuple[GiftCreate, dict | None]] | None = None,
    open_only: bool = False,
) -> Recorded:
    """Screen and record one gift. With dry_run, evaluate and write nothing.
    prepared: its facts about people and the policy, read before the lock by prepare_gift()
    for this very data; used if still current (see PreparedGift), else read again here (the
    policy too: `policy` is then ignored).
    provisional (dry_run only): called first inside the transaction, it may insert rows the
    preview needs but nobody may keep (the donate form's person before any payment) and
    returns the gift and its declared roles; the dry run's rollback removes those rows.
    max_gift_minor: the largest gift accepted from this channel (the MAX_GIFT_MINOR setting
    for typed input; a payment already made is bounded by its processor instead).
    declared: roles typed on the donate form by donor id, screened as if true; they are
    not written anywhere (the decision's reasons name them).
    open_only: a new gift from staff (form, API, import), which may not name a closed
    campaign, appeal or fund; a Stripe renewal or a correction may (app.ledger.campaigns)."""
    if provisional is not None and not dry_run:
        raise ValueError("provisional rows are for a dry run only: they are rolled back")
    if (data is None) == (provisional is None):
        raise ValueError("give the gift, or a provisional that makes it")
    usable = (prepared is not None and not dry_run and prepared.data is data
              and prepared.refs == refs and prepared.declared is declared
              and prepared.open_only == open_only)
    with ledger_write(session):
        if provisional is not None:
            data, declared = provisional(session)
        current = None
        if usable:
            # The transaction's first read under the lock (nothing pending to flush): on
            # the session's connection, without the ORM's per-statement work.
            current = session.connection().execute(
                _HEAD_AND_CHANGES, {"audit_mark": prepared.audit_mark}).one()
            if current.changed:
                current = None
                policy = prepared.policy_now(session)
            else:
                policy = prepared.policy
        if current is not None:
            # The facts read before the lock still hold: only what depends on other gifts
            # is read here.
            audit_head = current.audit_head
            donor, shares, gift = prepared.donor, prepared.shares, prepared.gift
            designation = prepared.designation
            validate_links(session, data, donor, merges_checked=True)
            _check_unique(session, data, refs)
            evaluation = evaluate_and_set_lab_part(
                policy, gift, prepared.facts,
                windows.funding_facts(session, gift.received_on, policy.window_days))
        else:
            first = session.execute(_FIRST_READ, {"donor_id": data.donor_id}).all()
            donor, affiliations = donor_with_affiliations(first)
            if donor is None:
                raise ValidationFailed({"donor_id": ["no such donor"]})
            audit_head = first[0].audit_head
            gift, shares, evaluation, designation = screen_new_gift(
                session, data, donor, affiliations, policy, reporting_currency, refs, actor,
                check_unique=lambda data, refs: _check_unique(session, data, refs),
                funding_facts=lambda day: windows.funding_facts(session, day,
                                                                policy.window_days),
                max_gift_minor=max_gift_minor, declared=declared,
                payer_relatives=None if first[0].has_relationships else (),
                open_only=open_only)
        if dry_run:
            session.rollback()
            return Recorded(gift, Decision(gift_id=0, outcome=evaluation.outcome,
                                           policy_version=evaluation.policy_version,
                                           reasons=evaluation.reasons(),
                                           figures=evaluation.figures), evaluation,
                            designation=designation)
        audit.known_head(session, audit_head)
        # It is added to the daily totals once it has an id, as apply_outcome would do.
        set_screened_status(gift, evaluation)
        # Each row below is one Core INSERT, and the gift and decision come back as
        # persistent ORM objects (rows.insert): no unit-of-work flushes on the hot path.
        try:
            rows.insert(session, gift)
        except IntegrityError as error:  # a unique payment id raced in; report, write nothing
            raise ValidationFailed({"external_ref": ["already recorded"]}) from error
        if gift.counts_as_funding:
            funding.add_to_funding(session, gift, share_credits(session, shares, donor))
        attributions = [
            {"gift_id": gift.id, "donor_id": share.donor_id, "fraction_ppm": share.fraction_ppm,
             "basis": share.basis}
            for share in shares
        ]
        attribution_ids = rows.insert_each(session, Attribution, attributions)
        decision = add_decision(session, gift, evaluation.outcome, evaluation,
                                kind="screening", actor=actor)
        # A gift that names no campaign, appeal or fund writes no designation row.
        designated = ([insert_designation(session, designation, gift.id)]
                      if designation is not None else [])
        if data.tribute is not None:  # in honour or memory of someone: written with the gift
            tribute = tribute_values(data.tribute, gift.id)
            [tribute["id"]] = rows.insert_each(session, GiftTribute, [tribute])
            designated += row_hashes.seals_of_values(GiftTribute, tribute)
        audit.append(session, actor, "gift.recorded", "gift", gift.id,
                     recorded_entry(gift, decision.id, evaluation.policy_version, designation),
                     sealed=[gift, decision, *[
                         row_hashes.seal_values(Attribution, {**values, "id": attribution_id})
                         for values, attribution_id in zip(attributions, attribution_ids,
                                                           strict=True)], *designated])
        if gift.status == "accepted":
            pledges.track_payments(session, gift.pledge_id, actor)
    return Recorded(gift, decision, evaluation, tuple(shares), designation, data.tribute)


def refund_gift(
    session: Session,
    gift_id: int,
    actor: Actor,
    *,
    amount_minor: int | None = None,
    refunded_on: date,
    reason: str | None = None,
    stripe_refund_id: str | None = None,
) -> Refund:
    """Record a (partial) refund. Windows ending before refunded_on are unchanged."""
    with ledger_write(session):
        gift = session.get(Gift, gift_id)
        if gift is None:
            raise NotFound("gift", gift_id)
        if stripe_refund_id is not None:
            existing = session.execute(
                select(Refund).where(Refund.stripe_refund_id == stripe_refund_id)
            ).scalar_one_or_none()
            if existing is not None:
                raise Duplicate("stripe_refund_id", existing.id)
        if gift.status in ("pending", "failed"):
            raise NotAllowed(f"a {gift.status} gift has received no money to refund")
        remaining = gift.amount_minor - gift.refunded_minor
        amount = remaining if amount_minor is None else amount_minor
        errors: dict[str, list[str]] = {}
        if remaining == 0:
            raise NotAllowed("the gift is already fully refunded")
        if amount <= 0 or amount > remaining:
            errors["amount"] = [
                f"must be between {format_amount(1, gift.currency)} and "
                f"{format_amount(remaining, gift.currency)} {gift.currency}"
            ]
        if refunded_on < gift.received_on:
            errors["refunded_on"] = ["must not be before the gift was received"]
        reversed_on = latest_reversal_day(session, gift.id)
        if reversed_on is not None and refunded_on < reversed_on:
            errors["refunded_on"] = [
                f"must not be before {reversed_on.isoformat()}, when a refund of this gift "
                "was reversed"]
        if errors:
            raise ValidationFailed(errors)
        # Convert cumulatively at the gift's stored rate, so the refunds of a fully
        # refunded gift add up to exactly its reporting amount.
        before = windows.refunded_reporting(gift, gift.refunded_minor)
        gift.refunded_minor += amount
        after = windows.refunded_reporting(gift, gift.refunded_minor)
        refund = Refund(
            gift_id=gift.id,
            amount_minor=amount,
            reporting_amount_minor=after - before,
            refunded_on=refunded_on,
            gift_received_on=gift.received_on,
            reason=reason,
            stripe_refund_id=stripe_refund_id,
            created_by_id=actor.user_id,
        )
        session.add(refund)
        session.flush()
        funding.deduct_refund(session, gift, gift.refunded_minor - amount)
        audit.append(session, actor, "gift.refunded", "gift", gift.id, {
            "refund_id": refund.id,
            "amount": format_amount(amount, gift.currency),
            "currency": gift.currency,
            "refunded_on": refunded_on,
            "reason": reason,
        }, sealed=[gift, refund])
        pledges.track_payments(session, gift.pledge_id, actor)
    return refund
