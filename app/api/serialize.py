"""Public JSON shapes. Amounts leave as decimal strings in major units."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from app.ledger.gifts import Recorded
from app.ledger.tributes import tribute_of, tribute_public
from models import (
    Affiliation,
    Attribution,
    Decision,
    Donor,
    DonorMerge,
    Gift,
    GiftCorrection,
    GiftDesignation,
    GiftTribute,
    InKindArrangement,
    Organization,
    OverrideRequest,
    Pledge,
    Refund,
)
from models.money import format_amount


def _iso(value):
    return value.isoformat() if value is not None else None


def fraction_text(ppm: int) -> str:
    return str((Decimal(ppm) / Decimal(1_000_000)).normalize())


def figures_public(figures: dict) -> dict:
    """Stored figures keep exact minor units; the API shows money in major units."""
    currency = figures.get("currency", "USD")
    result = {}
    for key, value in figures.items():
        if key.endswith("_minor") and isinstance(value, int):
            result[key.removesuffix("_minor")] = format_amount(value, currency)
        else:
            result[key] = value
    return result


def decision_public(decision: Decision) -> dict:
    return {
        "id": decision.id,
        "outcome": decision.outcome,
        "kind": decision.kind,
        "policy_version": decision.policy_version,
        "reasons": decision.reasons,
        "figures": figures_public(decision.figures),
        "note": decision.note,
        "public_note": decision.public_note,
        "decided_by": decision.decided_by_id,
        "approved_by": decision.approved_by_id,
        "created_at": _iso(decision.created_at),
    }


def organization_public(org: Organization) -> dict:
    return {
        "id": org.id,
        "name": org.name,
        "covered_lab": org.covered_lab,
        "aliases": list(org.aliases or []),
        "parent_id": org.parent_id,
        "created_at": _iso(org.created_at),
    }


def affiliation_public(aff: Affiliation) -> dict:
    return {
        "id": aff.id,
        "donor_id": aff.donor_id,
        "organization_id": aff.organization_id,
        "kind": aff.kind,
        "title": aff.title,
        "senior_decision_maker": aff.senior_decision_maker,
        #: The title a reviewer confirmed is not senior (rule possible_senior_decision_maker).
        "title_cleared": aff.title_cleared,
        "start_date": _iso(aff.start_date),
        "end_date": _iso(aff.end_date),
    }


def donor_public(donor: Donor, session: Session | None = None) -> dict:
    data = {
        "id": donor.id,
        "type": donor.type,
        "name": donor.name,
        "email": donor.email,
        "organization_id": donor.organization_id,
        "category": donor.category,
        "anonymous": donor.anonymous,
        "public_name_consent": donor.public_name_consent,
        "created_at": _iso(donor.created_at),
        "phone": donor.phone,
        "postal_address": donor.postal_address,
        "do_not_contact": donor.do_not_contact,
        "email_ok": donor.email_ok,
        "post_ok": donor.post_ok,
        "phone_ok": donor.phone_ok,
    }
    if session is not None:
        # Set when this record was merged into another: that donor's id (docs/api.md).
        merge = session.get(DonorMerge, donor.id)
        data["merged_into_id"] = merge.survivor_id if merge else None
        rows = session.execute(
            select(Affiliation).where(Affiliation.donor_id == donor.id)
            .order_by(Affiliation.start_date, Affiliation.id)
        ).scalars()
        data["affiliations"] = [affiliation_public(a) for a in rows]
    return data


def refund_public(refund: Refund, gift: Gift, reversed_on: date | None = None) -> dict:
    return {
        "id": refund.id,
        "gift_id": refund.gift_id,
        "amount": format_amount(refund.amount_minor, gift.currency),
        "currency": gift.currency,
        "reporting_amount": format_amount(refund.reporting_amount_minor, gift.reporting_currency),
        "refunded_on": _iso(refund.refunded_on),
        "reason": refund.reason,
        "created_at": _iso(refund.created_at),
        "reversed_on": _iso(reversed_on),
    }


def refund_reversal_public(reversal: Refund, gift: Gift) -> dict:
    """A refund reversed (its money came back): the amounts it counts again, positive."""
    return {
        "id": reversal.id,
        "refund_id": reversal.reverses_refund_id,
        "amount": format_amount(-reversal.amount_minor, gift.currency),
        "currency": gift.currency,
        "reporting_amount": format_amount(-reversal.reporting_amount_minor,
                                          gift.reporting_currency),
        "reversed_on": _iso(reversal.refunded_on),
        "reason": reversal.reason,
        "created_at": _iso(reversal.created_at),
    }


def gift_public(gift: Gift, session: Session, *, all_decisions: bool = True) -> dict:
    attributions = session.execute(
        select(Attribution).where(Attribution.gift_id == gift.id).order_by(Attribution.id)
    ).scalars()
    decisions = session.execute(
        select(Decision).where(Decision.gift_id == gift.id).order_by(Decision.id)
    ).scalars().all()
    rows = session.execute(
        select(Refund).where(Refund.gift_id == gift.id).order_by(Refund.id)
    ).scalars().all()
    designation = session.execute(
        select(GiftDesignation).where(GiftDesignation.gift_id == gift.id)).scalar()
    data = _gift_shape(gift, attributions, decisions, rows, all_decisions=all_decisions,
                       designation=designation,
                       tribute=tribute_public(tribute_of(session, gift.id)))
    if all_decisions:
        correction = session.execute(
            select(GiftCorrection).where(GiftCorrection.gift_id == gift.id)).scalar()
        data["correction"] = correction_public(correction) if correction else None
    return data


def gifts_public(gifts: list[Gift], session: Session) -> list[dict]:
    """gift_public of each gift of a list page (no `decisions`): each related table is read
    once for the whole page, not once per gift."""
    ids = [gift.id for gift in gifts]
    if not ids:
        return []

    def rows_by_gift(model) -> dict[int, list]:
        found: dict[int, list] = defaultdict(list)
        for row in session.execute(select(model).where(model.gift_id.in_(ids))
                                   .order_by(model.id)).scalars():
            found[row.gift_id].append(row)
        return found

    attributions, decisions, refunds = (rows_by_gift(m) for m in (Attribution, Decision, Refund))
    designations = {d.gift_id: d for d in session.execute(
        select(GiftDesignation).where(GiftDesignation.gift_id.in_(ids))).scalars()}
    tributes = {t.gift_id: t for t in session.execute(
        select(GiftTribute).where(GiftTribute.gift_id.in_(ids))).scalars()}
    return [_gift_shape(gift, attributions[gift.id], decisions[gift.id], refunds[gift.id],
                        all_decisions=False, designation=designations.get(gift.id),
                        tribute=tribute_public(tributes.get(gift.id)))
            for gift in gifts]


def correction_public(correction: GiftCorrection) -> dict:
    return {
        "id": correction.id,
        "gift_id": correction.gift_id,
        "kind": correction.kind,
        "reason": correction.reason,
        "refund_id": correction.refund_id,
        "replacement_gift_id": correction.replacement_gift_id,
        "created_by_id": correction.created_by_id,
        "created_at": correction.created_at.isoformat(),
    }


def new_gift_public(recorded: Recorded) -> dict:
    """gift_public of a gift just recorded, from what the door returned: no database read
    (the API answers with it after the commit, whatever became of the connection)."""
    # The shares as written carry what the shape reads of an attribution (donor_id,
    # fraction_ppm, basis): no table model is built for them (SQLModel's constructor is slow).
    return {**_gift_shape(recorded.gift, recorded.shares, [recorded.decision], [],
                          designation=recorded.designation,
                          tribute=recorded.tribute.model_dump() if recorded.tribute else None),
            "correction": None}  # a gift just recorded has not been voided


def _gift_shape(gift: Gift, attributions, decisions: list[Decision], rows: list[Refund], *,
                all_decisions: bool = True, designation=None,
                tribute: dict | None = None) -> dict:
    # `refunds` lists the refunds made (a reversed one stays, with its reversed_on);
    # `refund_reversals` the reversals, which models keep as negative refund rows.
    reversals = [r for r in rows if r.is_reversal]
    reversed_on = {r.reverses_refund_id: r.refunded_on for r in reversals}
    refunds = [r for r in rows if not r.is_reversal]
    data = {
        "id": gift.id,
        "donor_id": gift.donor_id,
        "amount": format_amount(gift.amount_minor, gift.currency),
        "currency": gift.currency,
        "reporting_amount": format_amount(gift.reporting_amount_minor, gift.reporting_currency),
        "reporting_currency": gift.reporting_currency,
        "fx_rate": gift.fx_rate,
        "fx_source": gift.fx_source,
        "received_on": _iso(gift.received_on),
        "method": gift.method,
        "kind": gift.kind,
        "purpose": gift.purpose,
        "description": gift.description,
        "status": gift.status,
        "refund_status": gift.refund_status,
        "refunded_amount": format_amount(gift.refunded_minor, gift.currency),
        "lab_employee_amount": format_amount(gift.lab_minor, gift.reporting_currency),
        "disclose": gift.disclose,
        "pledge_id": gift.pledge_id,
        "matching_gift_for": gift.matching_gift_for_id,
        "external_ref": gift.external_ref,
        # What the gift was raised by and for (null: none named).
        "campaign_id": getattr(designation, "campaign_id", None),
        "appeal_id": getattr(designation, "appeal_id", None),
        "fund_id": getattr(designation, "fund_id", None),
        # What the donor got in return (null: nothing), valued in the gift's currency.
        "goods_or_services": None if gift.goods_description is None else {
            "description": gift.goods_description,
            "value": format_amount(gift.goods_value_minor, gift.currency)},
        # In honour or memory of whom (null: not a tribute gift).
        "tribute": tribute,
        "attributions": [
            {"donor_id": a.donor_id, "fraction": fraction_text(a.fraction_ppm), "basis": a.basis}
            for a in attributions
        ],
        "refunds": [refund_public(r, gift, reversed_on.get(r.id)) for r in refunds],
        "refund_reversals": [refund_reversal_public(r, gift) for r in reversals],
        "decision": decision_public(decisions[-1]) if decisions else None,
        "created_at": _iso(gift.created_at),
    }
    if all_decisions:
        data["decisions"] = [decision_public(d) for d in decisions]
    return data


def in_kind_public(item: InKindArrangement) -> dict:
    return {
        "id": item.id,
        "organization_id": item.organization_id,
        "description": item.description,
        "purpose": item.purpose,
        "start_date": _iso(item.start_date),
        "end_date": _iso(item.end_date),
        "estimated_value": format_amount(item.estimated_value_minor, item.currency)
        if item.estimated_value_minor is not None and item.currency else None,
        "currency": item.currency,
    }


def override_public(request: OverrideRequest) -> dict:
    return {
        "id": request.id,
        "gift_id": request.gift_id,
        "outcome": request.outcome,
        "reason": request.reason,
        "public_note": request.public_note,
        "state": request.state,
        "requested_by": request.requested_by_id,
        "requested_at": _iso(request.requested_at),
        "decided_by": request.decided_by_id,
        "decided_at": _iso(request.decided_at),
    }


def pledge_public(pledge: Pledge, schedule, paid_minor: int) -> dict:
    """paid_minor: accepted payments net of refunds (app.ledger.pledges.paid_minor)."""
    return {
        "id": pledge.id,
        "donor_id": pledge.donor_id,
        "amount": format_amount(pledge.amount_minor, pledge.currency),
        "currency": pledge.currency,
        "pledged_on": _iso(pledge.pledged_on),
        "description": pledge.description,
        "state": pledge.state,
        "cancelled_on": _iso(pledge.cancelled_on),
        "cancel_reason": pledge.cancel_reason,
        "paid": format_amount(paid_minor, pledge.currency),
        "overpaid": format_amount(max(0, paid_minor - pledge.amount_minor), pledge.currency),
        "instalments": [
            {
                "id": s.id,
                "due_on": _iso(s.due_on),
                "amount": format_amount(s.amount_minor, pledge.currency),
                "paid": format_amount(s.paid_minor, pledge.currency),
                "state": s.state,
            }
            for s in schedule
        ],
    }

