"""Corrections without editing history: a mistaken gift (wrong amount, date, donor) is voided,
and for a correction the right one is recorded in its place through the one door.

Voiding reverses the gift with a refund row of its whole amount dated on the gift's own
date: every window containing the gift ends on or after that date, so the gift counts in
none of them, in the daily totals, the giving summaries and the reports alike, while the
gift, its decisions and the reversal all stay in history. A GiftCorrection row keeps the
reason (never the audit entry: free text stays out of the chain) and names the refund and
the replacement gift.

Taking money out of past windows can push a later lab-employee gift's window to the cap
(the gift voided was not lab money, so lab money's share of that window rises). So the
accepted lab-employee gifts dated in the window after the voided gift are screened again
against the ledger as it now stands; each the policy would no longer accept is held for a
reviewer with a `rescreen` decision naming the correction (as when facts change late).
Everything happens in one locked transaction; the audit shows gift.voided, the
re-screenings and (a correction) the replacement's gift.recorded.

A held gift is decided by a reviewer first (reject it, then void it if it was a mistake);
a gift with refunds is not voided (its refunds are real money movements: refund the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from app.db.locking import ledger_batch
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, funding, pledges, windows
from app.ledger.audit import Actor
from app.ledger.gifts import Recorded, add_decision, record_gift, screen_gift, stored_shares
from app.ledger.tributes import tribute_of, tribute_public
from models import (
    Attribution,
    Decision,
    Gift,
    GiftCorrection,
    GiftDesignation,
    Refund,
    transition,
)
from models.money import format_amount
from models.schemas import AttributionIn, GiftCorrectionCreate, GiftCreate
from policies import Policy

#: Statuses a gift may be voided from.
VOIDABLE = ("accepted", "rejected")


@dataclass
class Corrected:
    gift: Gift
    correction: GiftCorrection
    #: Later gifts held again because the voided money left their windows.
    rescreened: list[Decision] = field(default_factory=list)
    #: The gift recorded in its place (a correction).
    replacement: Recorded | None = None


def correction_of(session: Session, gift_id: int) -> GiftCorrection | None:
    """The correction that voided this gift, if any."""
    return session.execute(
        select(GiftCorrection).where(GiftCorrection.gift_id == gift_id)).scalar_one_or_none()


def _voidable(session: Session, gift_id: int) -> Gift:
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift", gift_id)
    done = correction_of(session, gift_id)
    if done is not None:
        raise NotAllowed(f"gift {gift_id} was already voided (correction {done.id})")
    if gift.status == "held":
        raise NotAllowed("a held gift is decided by a reviewer first: reject it, then void it")
    if gift.status not in VOIDABLE:
        raise NotAllowed(f"a {gift.status} gift has received no money to void")
    if gift.stripe_payment_intent_id or gift.stripe_checkout_session_id or gift.stripe_invoice_id:
        # Stripe's later events (refunds, disputes) find a gift by its payment's ids: a
        # voided gift would catch them, and the money itself is returned in Stripe.
        raise NotAllowed("a payment received through Stripe is not voided or corrected here: "
                         "refund it (Stripe returns the money and the ledger follows)")
    if gift.refunded_minor != 0 or session.execute(
            select(Refund.id).where(Refund.gift_id == gift_id).limit(1)).first():
        raise NotAllowed("a gift with refunds is not voided: its refunds moved real money; "
                         "refund the rest instead")
    return gift


def _reverse(session: Session, gift: Gift, actor: Actor) -> Refund:
    """A refund of the whole gift on its own date: it counts in no window from now on."""
    refund = Refund(
        gift_id=gift.id, amount_minor=gift.amount_minor,
        reporting_amount_minor=windows.refunded_reporting(gift, gift.amount_minor),
        refunded_on=gift.received_on, gift_received_on=gift.received_on,
        reason="Voided: recorded in error", created_by_id=actor.user_id)
    gift.refunded_minor = gift.amount_minor
    session.add(refund)
    session.flush()
    funding.deduct_refund(session, gift, 0)
    return refund


def _rescreen_later(session: Session, gift: Gift, policy: Policy, actor: Actor,
                    why: str) -> list[Decision]:
    """Accepted lab-employee gifts in the windows the voided gift was in, screened again
    in date order; those the policy would no longer accept are held."""
    last = gift.received_on + timedelta(days=policy.window_days - 1)
    later = session.execute(
        select(Gift).where(Gift.status == "accepted", Gift.kind == "cash", Gift.lab_minor > 0,
                           Gift.received_on >= gift.received_on, Gift.received_on <= last,
                           Gift.id != gift.id)
        .order_by(Gift.received_on, Gift.id)).scalars().all()
    held = []
    for other in later:
        counted_lab = other.lab_minor
        funding.remove_from_funding(session, other)
        evaluation = screen_gift(session, other, stored_shares(session, other.id), policy)
        if evaluation.outcome == "accept":
            other.lab_minor = counted_lab  # nothing changed for it: back as it was
            funding.add_to_funding(session, other)
            continue
        transition(other, "held")
        decision = add_decision(session, other, "hold", evaluation, kind="rescreen",
                                actor=actor, note=why)
        audit.append(session, actor, "gift.rescreened", "gift", other.id, {
            "decision_id": decision.id, "why": why, "policy_outcome": evaluation.outcome,
        }, sealed=[other, decision])
        pledges.track_payments(session, other.pledge_id, actor)
        held.append(decision)
    return held


def _void(session: Session, gift: Gift, kind: str, reason: str, actor: Actor,
          policy: Policy, replacement_id: int | None = None) -> Corrected:
    counted = gift.counts_as_funding
    status_before = gift.status
    refund = _reverse(session, gift, actor) if status_before == "accepted" else None
    correction = GiftCorrection(gift_id=gift.id, kind=kind, reason=reason,
                                refund_id=refund.id if refund else None,
                                replacement_gift_id=replacement_id,
                                created_by_id=actor.user_id)
    session.add(correction)
    session.flush()
    audit.append(session, actor, "gift.voided", "gift", gift.id, {
        "correction_id": correction.id, "kind": kind, "status": status_before,
        "amount": format_amount(gift.amount_minor, gift.currency), "currency": gift.currency,
        "received_on": gift.received_on, "refund_id": correction.refund_id,
        "replacement_gift_id": replacement_id,
    }, sealed=[gift, correction, *([refund] if refund else [])])
    pledges.track_payments(session, gift.pledge_id, actor)
    rescreened = []
    if counted and gift.lab_minor < gift.reporting_amount_minor:
        what = "corrected" if kind == "correction" else "voided"
        rescreened = _rescreen_later(
            session, gift, policy, actor,
            f"Gift {gift.id} of {gift.received_on.isoformat()} was {what} (correction "
            f"{correction.id}): its money left the windows this gift was screened in.")
    return Corrected(gift, correction, rescreened)


def void_gift(session: Session, gift_id: int, reason: str, actor: Actor,
              policy: Policy) -> Corrected:
    """Void a gift recorded in error; nothing takes its place."""
    with ledger_batch(session, growing=False):
        gift = _voidable(session, gift_id)
        return _void(session, gift, "void", reason, actor, policy)


def corrected_data(session: Session, gift: Gift, data: GiftCorrectionCreate) -> GiftCreate:
    """The gift as it should have been: the mistaken one's facts with the corrections."""
    donor_id = data.donor_id if data.donor_id is not None else gift.donor_id
    same_donor = donor_id == gift.donor_id
    attributions = None
    if same_donor:
        shares = session.execute(select(Attribution).where(Attribution.gift_id == gift.id)
                                 .order_by(Attribution.id)).scalars().all()
        if any(s.basis in ("explicit", "daf_advisor") for s in shares):
            attributions = [AttributionIn(donor_id=s.donor_id,
                                          fraction=str(Decimal(s.fraction_ppm).scaleb(-6)))
                            for s in shares]
    currency = data.currency or gift.currency
    fx_rate = data.fx_rate if data.fx_rate is not None else (
        gift.fx_rate if currency == gift.currency and currency != gift.reporting_currency
        else None)
    values = {
        "donor_id": donor_id,
        "amount": data.amount if data.amount is not None
        else format_amount(gift.amount_minor, gift.currency),
        "currency": currency,
        "received_on": data.received_on or gift.received_on,
        "method": gift.method, "kind": gift.kind, "purpose": gift.purpose,
        "description": gift.description,
        "pledge_id": gift.pledge_id if same_donor else None,
        "fx_rate": fx_rate,
        "fx_source": gift.fx_source if fx_rate is not None and data.fx_rate is None else None,
        "attributions": attributions,
        "matching_gift_for": gift.matching_gift_for_id,
        # External references are unique: the voided gift keeps its own.
    }
    if gift.goods_description is not None:
        # The goods' value is in the gift's currency: a gift corrected into another
        # currency would state it wrongly, so that correction is refused (void and record).
        if currency != gift.currency:
            raise ValidationFailed({"currency": [
                "this gift records goods or services valued in "
                f"{gift.currency}: void it and record the right gift instead"]})
        values["goods_or_services"] = {
            "description": gift.goods_description,
            "value": format_amount(gift.goods_value_minor, gift.currency)}
    tribute = tribute_of(session, gift.id)
    if tribute is not None:
        values["tribute"] = tribute_public(tribute)
    designation = session.execute(select(GiftDesignation).where(
        GiftDesignation.gift_id == gift.id)).scalar_one_or_none()
    if designation is not None:
        values.update(campaign_id=designation.campaign_id, appeal_id=designation.appeal_id,
                      fund_id=designation.fund_id)
    try:
        return GiftCreate.model_validate(values)
    except ValueError as error:
        raise ValidationFailed({"body": [str(error)]}) from None


def correct_gift(session: Session, gift_id: int, data: GiftCorrectionCreate, actor: Actor,
                 policy: Policy, reporting_currency: str) -> Corrected:
    """Void the mistaken gift and record the right one through the one door, in one
    transaction: both or neither."""
    with ledger_batch(session, growing=False):
        gift = _voidable(session, gift_id)
        if gift.status == "rejected":
            # Recording it again would screen it afresh: one person turning a rejection into
            # an acceptance, which takes two reviewers (an override).
            raise NotAllowed("a rejected gift is not corrected: void it, or ask for an "
                             "override (a second reviewer)")
        if not data.changes_anything():
            raise ValidationFailed({"body": ["name what was wrong: amount, currency, "
                                             "received_on or donor_id"]})
        new = corrected_data(session, gift, data)
        # Voided first, so the replacement is screened against windows without the mistake.
        corrected = _void(session, gift, "correction", data.reason, actor, policy)
        recorded = record_gift(session, new, actor, policy, reporting_currency)
        corrected.correction.replacement_gift_id = recorded.gift.id
        session.flush()
        audit.append(session, actor, "gift.corrected", "gift", gift.id, {
            "correction_id": corrected.correction.id,
            "replacement_gift_id": recorded.gift.id,
            "changed": sorted(data.changed_fields()),
        }, sealed=[corrected.correction])
        corrected.replacement = recorded
    return corrected
