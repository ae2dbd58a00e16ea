"""Stripe money into the ledger.

Every payment goes through record_gift (the one door) and every refund through
refund_gift. The functions taking a Context run inside the webhook's ledger_batch,
so the gift, its decision, the settlement, the deferred refunds it picks up and the
processed-event row commit together. Inside a batch a ledger write that raises
aborts the whole batch, so each step checks what would make it raise first.

Calls to Stripe that change something (a refund, a cancelled subscription) never run
under the ledger lock: they are queued as follow-ups and run after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

import stripe
from sqlalchemy import func, or_, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import Duplicate, LedgerError
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.declarations import declared_title, waiting_refusals
from app.ledger.gifts import PaymentRefs, Recorded, record_gift, refund_gift
from app.ledger.parties import add_affiliation, create_donor, same_email_donors
from app.ledger.refund_reversals import latest_reversal_day
from app.ledger.reviews import hold_for_rescreen
from app.payments.gateway import Settlement, StripeGateway, StripeRefund
from app.payments.screening import DONATE_FORM, daf_sponsor_id, declared_role
from models import (
    Affiliation,
    DeferredRefund,
    DonationGift,
    Gift,
    OnlineDonation,
    Organization,
    Refund,
    StripeDispute,
    StripeSettlement,
    utcnow,
)
from models.money import convert, currency_exponent, format_amount
from models.online import IllegalDonationMove, move_donation
from models.schemas import AffiliationCreate, DonorCreate, GiftCreate
from policies import AffiliationFact, Policy

log = logging.getLogger(__name__)

STRIPE = Actor("stripe")
#: Refund statuses that mean the money is (being) returned.
RETURNING = ("succeeded", "pending", "requires_action")


class NoConversion(LedgerError):
    """A foreign-currency payment with neither a settled amount nor a configured rate."""


@dataclass
class Context:
    session: Session
    gateway: StripeGateway
    policy: Policy
    reporting_currency: str
    timezone: ZoneInfo
    auto_refund: bool
    preview_rates: dict[str, str]
    #: This installation's id (app.payments.matching); None before any donation made one.
    install_id: str | None = None
    #: Calls to make after the batch commits (refunds, cancellations).
    followups: list[Callable[[], None]] = field(default_factory=list)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.timezone).date()


def move(donation: OnlineDonation, state: str) -> bool:
    """Advance an online donation; a move its history forbids (a late event) is ignored."""
    try:
        move_donation(donation, state)
    except IllegalDonationMove:
        return False
    return True


def gift_for_payment(session: Session, *, payment_intent_id: str | None = None,
                     invoice_id: str | None = None,
                     checkout_session_id: str | None = None) -> Gift | None:
    for column, value in ((Gift.stripe_invoice_id, invoice_id),
                          (Gift.stripe_payment_intent_id, payment_intent_id),
                          (Gift.stripe_checkout_session_id, checkout_session_id)):
        if value:
            gift = session.execute(select(Gift).where(column == value)).scalar_one_or_none()
            if gift is not None:
                return gift
    return None


def settled_rate(amount_minor: int, currency: str, settled_minor: int, settled_currency: str) -> str:
    """The rate that turns the gift amount into exactly the settled amount (a plain decimal)."""
    gift_major = Decimal(amount_minor).scaleb(-currency_exponent(currency))
    settled_major = Decimal(settled_minor).scaleb(-currency_exponent(settled_currency))
    for precision in (12, 16, 20):
        with localcontext() as context:
            context.prec = precision
            rate = settled_major / gift_major
        text = format(rate.normalize(), "f")
        if len(text) <= 24 and convert(amount_minor, currency, Decimal(text),
                                       settled_currency) == settled_minor:
            return text
    return text[:24]


def _conversion(ctx: Context, amount_minor: int, currency: str,
                settlement: Settlement | None) -> tuple[str | None, str | None]:
    if currency == ctx.reporting_currency:
        return None, None
    if settlement is not None and settlement.currency == ctx.reporting_currency \
            and settlement.gross_minor > 0:
        rate = settled_rate(amount_minor, currency, settlement.gross_minor, settlement.currency)
        return rate, f"Stripe settlement {settlement.balance_transaction_id}"
    rate = ctx.preview_rates.get(currency)
    if rate is None:
        raise NoConversion(
            f"a {currency} payment settled without conversion to {ctx.reporting_currency} and "
            f"no rate for {currency} is configured (DONATION_PREVIEW_RATES)"
        )
    return rate, "configured indicative rate (Stripe settled no conversion)"


def _description(donation: OnlineDonation) -> str:
    text = f"Online donation ({donation.frequency}) through Stripe, form #{donation.id}"
    if donation.via_daf:
        text += f"; donor-advised fund {donation.daf_sponsor}, advisor {donation.daf_advisor}"
    return text


def record_payment(ctx: Context, donation: OnlineDonation, *, amount_minor: int, currency: str,
                   paid_at: datetime, refs: PaymentRefs,
                   settlement: Settlement | None) -> tuple[Gift, str]:
    """One payment, one gift: through the door, with its settlement and what was waiting."""
    session = ctx.session
    # Any of the payment's ids already on a gift: recording it again would be refused by
    # the door (and abort the event's batch), so it is a no-op here.
    existing = gift_for_payment(session, payment_intent_id=refs.stripe_payment_intent_id,
                                invoice_id=refs.stripe_invoice_id,
                                checkout_session_id=refs.stripe_checkout_session_id)
    if existing is not None:
        return existing, f"gift {existing.id} already recorded for this payment"
    charged = settlement.charged_at if settlement and settlement.charged_at else paid_at
    fx_rate, fx_source = _conversion(ctx, amount_minor, currency, settlement)
    resolve_donors(session, donation)
    data = GiftCreate(
        donor_id=donation.payer_donor_id,
        amount=format_amount(amount_minor, currency),
        currency=currency,
        received_on=ctx.local_date(charged),
        method="stripe",
        description=_description(donation),
        fx_rate=fx_rate,
        fx_source=fx_source,
        attributions=[{"donor_id": donation.donor_id, "fraction": "1"}] if donation.via_daf else None,
        campaign_id=donation.campaign_id,
    )
    declared = _declaration_at_payment(ctx, donation)
    recorded = record_gift(session, data, STRIPE, ctx.policy, ctx.reporting_currency, refs=refs,
                           declared=declared)
    gift = recorded.gift
    # Which donation this gift paid: a monthly donation's lifetime value (app.payments.recurring).
    session.add(DonationGift(donation_id=donation.id, gift_id=gift.id))
    if declared:
        _declaration_screened(ctx, donation, gift, recorded)
    if settlement is not None:
        session.add(StripeSettlement(
            gift_id=gift.id, payment_intent_id=settlement.payment_intent_id,
            charge_id=settlement.charge_id,
            balance_transaction_id=settlement.balance_transaction_id,
            gross_minor=settlement.gross_minor, fee_minor=settlement.fee_minor,
            net_minor=settlement.net_minor, settlement_currency=settlement.currency,
            exchange_rate=settlement.exchange_rate,
        ))
    if recorded.decision.outcome == "reject":
        _rejected_after_payment(ctx, donation, gift, recorded)
    else:
        _hold_for_refusals(ctx, donation, gift)
    apply_waiting(ctx, gift)
    session.flush()
    return gift, f"gift {gift.id} recorded: {recorded.decision.outcome}, now {gift.status}"


def resolve_donors(session: Session, donation: OnlineDonation) -> None:
    """The donation's person and payer as donor records, now that money arrived: the donor
    with the e-mail typed (found again: one may have been recorded since the form), else a
    new record with the name and e-mail typed (donor_created: its declaration becomes its
    record); the donor-advised fund's sponsor by name, else a new one. The form itself
    never creates a record (app.payments.screening)."""
    made = donation.donor_id is None or donation.payer_donor_id is None
    if donation.donor_id is None:
        same = same_email_donors(session, donation.donor_email)
        if same:
            donation.donor_id = same[0][0]
        else:
            donation.donor_id = create_donor(session, DonorCreate(
                type="person", name=donation.donor_name, email=donation.donor_email,
                anonymous=donation.anonymous), DONATE_FORM).id
            donation.donor_created = True
        donation.updated_at = utcnow()
    if donation.payer_donor_id is None:
        if donation.via_daf:
            name = (donation.daf_sponsor or "").strip()
            donation.payer_donor_id = daf_sponsor_id(session, name) or create_donor(
                session, DonorCreate(type="organization", name=name, category="daf_sponsor"),
                DONATE_FORM).id
        else:
            donation.payer_donor_id = donation.donor_id
        donation.updated_at = utcnow()
    if made:
        session.flush()
        # Who the donation is for is sealed (app.ledger.row_hashes): the chain records it
        # as the payment made it. Ids only, no names.
        audit.append(session, DONATE_FORM, "donation.donors_resolved", "online_donation",
                     donation.id, {"donor_id": donation.donor_id,
                                   "payer_donor_id": donation.payer_donor_id,
                                   "donor_created": donation.donor_created},
                     sealed=[donation])


def _hold_for_refusals(ctx: Context, donation: OnlineDonation, gift: Gift) -> None:
    """Declarations refused before for this donation's e-mail, or any address of its donor
    (records merged into it), and not dismissed: the gift
    waits for a reviewer, never refused by them (anyone can type anyone's address, and a
    stranger must not stop a real donor's gifts), and the record is not changed."""
    refused = waiting_refusals(ctx.session, donation.donor_email, donation.donor_id)
    if not refused or gift.status not in ("accepted", "held"):
        return
    claims = "; ".join(
        f"{'senior decision-maker' if r.declared_senior else 'employee'} at "
        f"{_organization_name(ctx.session, r.declared_lab_id)} "
        f"(refused declaration #{r.id}, {r.created_at.date().isoformat()})" for r in refused)
    hold_for_rescreen(
        ctx.session, gift, ctx.policy, STRIPE,
        "Before this payment, someone using this donor's e-mail address on the donation form "
        f"declared: {claims}; that gift was refused. Anyone can type any address, so the "
        "donor's record is unchanged. Check with the donor: record the role on the donor's "
        "page if it is true, or dismiss the refused declaration there.")


def _organization_name(session: Session, org_id: int) -> str:
    org = session.get(Organization, org_id)
    return org.name if org is not None else f"organisation {org_id}"


def _declaration_at_payment(ctx: Context, donation: OnlineDonation) -> dict[int, AffiliationFact]:
    """What the form declared, now that money arrived. For a donor record this donation
    created it becomes the record's affiliation (from the day of the form); for an existing
    donor it is only a claim, screened as if true (rule declaration_differs compares it with
    the record). Dismissed, applied or recorded declarations are not looked at again."""
    session = ctx.session
    lab_id = donation.declared_lab_id
    if lab_id is None or donation.declaration_state not in ("declared", "to_review"):
        return {}
    declared_on = ctx.local_date(donation.created_at)
    if donation.donor_created:
        if not _on_file(session, donation.donor_id, lab_id, donation.declared_senior, declared_on):
            add_affiliation(session, donation.donor_id, AffiliationCreate(
                organization_id=lab_id, kind="employee",
                title=declared_title(donation.declared_senior),
                senior_decision_maker=donation.declared_senior, start_date=declared_on,
            ), DONATE_FORM, ctx.policy)
        donation.declaration_state = "recorded"
        donation.updated_at = utcnow()
        _declaration_recorded(session, donation)
        return {}
    role = declared_role(session, lab_id, donation.declared_senior, declared_on)
    return {donation.donor_id: role} if role else {}


def _declaration_recorded(session: Session, donation: OnlineDonation) -> None:
    """The declaration's state moved: the chain seals the donation as it now stands
    (app.ledger.row_hashes). Rare: only donations that declared a lab role get here."""
    audit.append(session, STRIPE, "donation.declaration_recorded", "online_donation",
                 donation.id, {"donor_id": donation.donor_id, "lab_id": donation.declared_lab_id,
                               "senior": donation.declared_senior}, sealed=[donation])


def _on_file(session: Session, donor_id: int, lab_id: int, senior: bool, on: date) -> bool:
    """The record already has the declared role (senior, if a senior role was declared)."""
    on_file = session.execute(
        select(Affiliation).where(
            Affiliation.donor_id == donor_id,
            Affiliation.organization_id == lab_id,
            Affiliation.start_date <= on,
            or_(Affiliation.end_date.is_(None), Affiliation.end_date >= on),
        )
    ).scalars().all()
    return any(a.senior_decision_maker or not senior for a in on_file)


def _declaration_screened(ctx: Context, donation: OnlineDonation, gift: Gift,
                          recorded: Recorded) -> None:
    """An existing donor's declaration: held for a reviewer if the record does not show it."""
    differs = any(f.rule == "declaration_differs" for f in recorded.evaluation.fired)
    if not differs:
        if donation.declaration_state == "declared":
            donation.declaration_state = "recorded"  # the record already says as much
            donation.updated_at = utcnow()
            _declaration_recorded(ctx.session, donation)
        return
    if donation.declaration_state != "to_review":
        donation.declaration_state = "to_review"
        donation.declaration_gift_id = gift.id
        donation.updated_at = utcnow()
        audit.append(ctx.session, STRIPE, "donation.declaration_to_review", "online_donation",
                     donation.id, {"gift_id": gift.id, "donor_id": donation.donor_id,
                                   "lab_id": donation.declared_lab_id,
                                   "senior": donation.declared_senior}, sealed=[donation])


def _rejected_after_payment(ctx: Context, donation: OnlineDonation, gift: Gift,
                            recorded: Recorded) -> None:
    """The money is in and the policy rejects it: return it, or hold it for a reviewer."""
    session = ctx.session
    # Rule names, not the findings' messages: those name people, and the hash-chained audit
    # trail must stay free of personal data (the decision row keeps the full reasons).
    rules = [f.rule for f in recorded.evaluation.fired if f.outcome == "reject"]
    why = ", ".join(rule.replace("_", " ") for rule in rules)
    audit.append(session, STRIPE, "stripe.rejected_after_payment", "gift", gift.id, {
        "online_donation_id": donation.id, "rules": rules, "auto_refund": ctx.auto_refund,
    })
    gift_id = gift.id
    if ctx.auto_refund:
        ctx.followups.append(lambda: return_money(
            ctx.session, ctx.gateway, gift_id, STRIPE,
            reason="Rejected by the independence policy after payment (automatic refund)",
            policy=ctx.policy, timezone=ctx.timezone,
        ))
    else:
        hold_for_rescreen(
            session, gift, ctx.policy, STRIPE,
            f"Stripe has already taken this money and the policy rejects it ({why}). Rejecting "
            "the gift refunds the donor through Stripe; accepting it needs a second reviewer.",
        )
    if donation.frequency == "monthly":
        donation.attention = (
            f"Monthly gift stopped: the payment recorded as gift {gift.id} on "
            f"{gift.received_on.isoformat()} was rejected by the policy ({why}). The "
            "subscription is being cancelled; please contact the donor."
        )
        donation.updated_at = utcnow()
        audit.append(session, STRIPE, "donation.subscription_stopping", "online_donation",
                     donation.id, {"gift_id": gift.id, "subscription_id": donation.subscription_id,
                                   "rules": rules})
        donation_id = donation.id
        ctx.followups.append(lambda: stop_subscription(ctx.session, ctx.gateway, donation_id))


def refund_day(session: Session, gift: Gift, day: date) -> date:
    """The date to record a refund Stripe made on `day`: never before the gift, nor before
    a reversal of one of the gift's refunds (refund_gift refuses both, and inside a
    webhook's batch a refusal would fail the event at every delivery). A refund reported
    only after a reversal is dated on the reversal's day instead."""
    return max(day, gift.received_on, latest_reversal_day(session, gift.id) or day)


def apply_refund(ctx: Context, gift: Gift, refund: StripeRefund) -> str:
    """Record one Stripe refund against its gift, once, through refund_gift."""
    session = ctx.session
    known = session.execute(
        select(Refund.id).where(Refund.stripe_refund_id == refund.id)
    ).scalar_one_or_none()
    if known is not None:
        return f"refund {refund.id} already recorded"
    remaining = gift.amount_minor - gift.refunded_minor
    problem = None
    if refund.currency != gift.currency:
        problem = f"refund in {refund.currency}, gift in {gift.currency}"
    elif gift.status in ("pending", "failed"):
        problem = f"gift is {gift.status}"
    elif remaining <= 0:
        problem = "gift already fully refunded"
    if problem is not None:
        audit.append(session, STRIPE, "stripe.refund_unapplied", "gift", gift.id, {
            "stripe_refund_id": refund.id, "amount_minor": refund.amount_minor, "why": problem,
        })
        return f"refund {refund.id} not applied: {problem}"
    amount = min(refund.amount_minor, remaining)
    refunded_on = refund_day(session, gift, ctx.local_date(refund.created))
    reason = "Refunded through Stripe" + (f" ({refund.reason})" if refund.reason else "")
    record = refund_gift(session, gift.id, STRIPE, amount_minor=amount, refunded_on=refunded_on,
                         reason=reason, stripe_refund_id=refund.id)
    return f"refund {refund.id} recorded as refund {record.id} of gift {gift.id}"


def refund_or_defer(ctx: Context, payment_intent_id: str | None, refund: StripeRefund) -> str:
    """Apply a refund to its payment's gift, or keep it until that payment is recorded."""
    session = ctx.session
    if refund.status not in RETURNING:
        return f"refund {refund.id} is {refund.status}: nothing returned"
    gift = gift_for_payment(session, payment_intent_id=payment_intent_id)
    if gift is not None:
        return apply_refund(ctx, gift, refund)
    waiting = session.execute(
        select(DeferredRefund).where(DeferredRefund.stripe_refund_id == refund.id)
    ).scalar_one_or_none()
    if waiting is not None or not payment_intent_id:
        return f"refund {refund.id} already waiting" if waiting else \
            f"refund {refund.id} has no payment intent: ignored"
    session.add(DeferredRefund(
        stripe_refund_id=refund.id, payment_intent_id=payment_intent_id,
        charge_id=refund.charge_id, amount_minor=refund.amount_minor, currency=refund.currency,
        refunded_on=ctx.local_date(refund.created), reason=refund.reason,
    ))
    return f"refund {refund.id} kept until payment {payment_intent_id} is recorded"


def apply_waiting(ctx: Context, gift: Gift) -> None:
    """What arrived before the gift's payment: refunds and disputes of the same payment."""
    session = ctx.session
    pi = gift.stripe_payment_intent_id
    if not pi:
        return
    waiting = session.execute(
        select(DeferredRefund)
        .where(DeferredRefund.payment_intent_id == pi, DeferredRefund.state == "waiting")
        .order_by(DeferredRefund.id)
    ).scalars().all()
    for row in waiting:
        refund = StripeRefund(id=row.stripe_refund_id, amount_minor=row.amount_minor,
                              currency=row.currency, status="succeeded",
                              created=datetime.combine(row.refunded_on, datetime.min.time(),
                                                       ctx.timezone),
                              reason=row.reason, payment_intent_id=pi, charge_id=row.charge_id)
        apply_refund(ctx, gift, refund)
        row.state = "applied"
        row.applied_at = utcnow()
        row.refund_id = session.execute(
            select(Refund.id).where(Refund.stripe_refund_id == row.stripe_refund_id)
        ).scalar_one_or_none()
    disputes = session.execute(
        select(StripeDispute).where(StripeDispute.payment_intent_id == pi,
                                    StripeDispute.gift_id.is_(None))
    ).scalars().all()
    for dispute in disputes:
        dispute.gift_id = gift.id
        audit.append(session, STRIPE, "gift.disputed", "gift", gift.id, {
            "stripe_dispute_id": dispute.stripe_dispute_id, "status": dispute.status,
            "amount_minor": dispute.amount_minor,
        }, sealed=[dispute])
        if dispute.status == "lost":
            record_lost_dispute(ctx, gift, dispute, dispute.closed_at or utcnow())


def record_lost_dispute(ctx: Context, gift: Gift, dispute: StripeDispute, closed_at: datetime) -> str:
    """A lost dispute took the money back: record it as a refund, once."""
    session = ctx.session
    if dispute.refund_id is not None:
        return f"dispute {dispute.stripe_dispute_id} already recorded as refund {dispute.refund_id}"
    remaining = gift.amount_minor - gift.refunded_minor
    if remaining <= 0 or dispute.currency != gift.currency or gift.status in ("pending", "failed"):
        audit.append(session, STRIPE, "stripe.dispute_unapplied", "gift", gift.id, {
            "stripe_dispute_id": dispute.stripe_dispute_id, "remaining_minor": remaining,
        })
        return f"dispute {dispute.stripe_dispute_id} lost; nothing left to refund"
    record = refund_gift(
        session, gift.id, STRIPE, amount_minor=min(dispute.amount_minor, remaining),
        refunded_on=refund_day(session, gift, ctx.local_date(closed_at)),
        reason=f"Card dispute {dispute.stripe_dispute_id} lost ({dispute.reason or 'no reason'})",
    )
    dispute.refund_id = record.id
    # The dispute row now names its refund: the chain records it as it stands (row_hashes).
    audit.append(session, STRIPE, "gift.dispute_refunded", "gift", gift.id, {
        "stripe_dispute_id": dispute.stripe_dispute_id, "refund_id": record.id,
    }, sealed=[dispute])
    return f"dispute {dispute.stripe_dispute_id} lost: refund {record.id} of gift {gift.id}"


# --- after the commit: calls that change something at Stripe ------------------------------

def record_stripe_refund(session: Session, gift_id: int, refund: StripeRefund, actor: Actor,
                         reason: str, timezone: ZoneInfo | None = None) -> Refund | None:
    """Record a refund we asked Stripe for (its webhook may have recorded it already)."""
    existing = session.execute(
        select(Refund).where(Refund.stripe_refund_id == refund.id)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    gift = session.get(Gift, gift_id)
    remaining = gift.amount_minor - gift.refunded_minor
    if remaining <= 0 or refund.status not in RETURNING:
        return None
    # Refunds are dated in the organisation's time zone, like every ledger date; without
    # one given, the session's (app.db.org_today), never the UTC date.
    zone = timezone or session.info.get("org_timezone", UTC)
    refunded_on = refund.created.astimezone(zone).date()
    try:
        return refund_gift(session, gift_id, actor, amount_minor=min(refund.amount_minor, remaining),
                           refunded_on=refund_day(session, gift, refunded_on), reason=reason,
                           stripe_refund_id=refund.id)
    except Duplicate:  # the charge.refunded webhook recorded it in the meantime
        return session.execute(
            select(Refund).where(Refund.stripe_refund_id == refund.id)
        ).scalar_one_or_none()


def refund_key(payment_intent_id: str, after_reversal: int | None = None) -> str:
    """The idempotency key of the refund that returns a rejected gift's money: by the payment
    intent (one gift each), unique in the Stripe account, where a gift number is not (another
    installation on the account, or this one after a restore, has a gift 12 too, and Stripe
    would answer the repeated key with the other refund, or refuse it). Once a refund of the
    gift was reversed (it failed: the money came back), returning it again is a new request,
    keyed by that reversal too: the first key would only replay the refund that failed."""
    if after_reversal is None:
        return f"reject-{payment_intent_id}"
    return f"reject-{payment_intent_id}-after-reversal-{after_reversal}"


def return_money(session: Session, gateway: StripeGateway, gift_id: int, actor: Actor, *,
                 reason: str, policy: Policy | None = None,
                 timezone: ZoneInfo | None = None) -> Refund | None:
    """Refund what is left of a rejected Stripe gift, through the API, and record it.

    The idempotency key is fixed per gift (by its payment intent, and per reversal of its
    refund, see refund_key), so a retry (or a second reviewer's click) never returns the
    money twice. If Stripe refuses and a policy is given, the gift is put back on hold so a
    reviewer sees it; either way the failure is in the audit trail.
    """
    gift = session.get(Gift, gift_id)
    if gift is None or not gift.stripe_payment_intent_id:
        return None
    remaining = gift.amount_minor - gift.refunded_minor
    if remaining <= 0:
        return None
    latest_reversal = session.execute(
        select(func.max(Refund.id)).where(Refund.gift_id == gift.id,
                                          Refund.reverses_refund_id.is_not(None))
    ).scalar_one_or_none()
    try:
        pi = gift.stripe_payment_intent_id
        refund = gateway.refund(pi, remaining, refund_key(pi, latest_reversal),
                                {"gift_id": str(gift.id), "why": "rejected"})
    except stripe.StripeError as error:
        log.warning("Stripe refund of gift %s failed: %s", gift_id, error)
        with ledger_write(session):
            gift = session.get(Gift, gift_id)
            audit.append(session, actor, "stripe.refund_failed", "gift", gift.id, {
                "error": str(error)[:500], "amount_minor": remaining,
            })
            if policy is not None and gift.status == "rejected":
                hold_for_rescreen(session, gift, policy, actor,
                                  f"The refund through Stripe failed ({str(error)[:200]}). The "
                                  "money is still here: reject again to retry the refund.")
        return None
    return record_stripe_refund(session, gift_id, refund, actor, reason, timezone)


def stop_subscription(session: Session, gateway: StripeGateway, donation_id: int) -> None:
    """Cancel a monthly gift whose payment the policy rejected; tell staff if Stripe refuses."""
    donation = session.get(OnlineDonation, donation_id)
    if donation is None or not donation.subscription_id or donation.state == "cancelled":
        return
    try:
        gateway.cancel_subscription(donation.subscription_id)
    except stripe.StripeError as error:
        log.warning("cancelling subscription %s failed: %s", donation.subscription_id, error)
        with ledger_write(session):
            donation = session.get(OnlineDonation, donation_id)
            donation.attention = (donation.attention or "") + (
                f" Cancelling the subscription through Stripe failed ({str(error)[:200]}): "
                "cancel it in the Stripe Dashboard."
            )
            audit.append(session, STRIPE, "stripe.subscription_cancel_failed", "online_donation",
                         donation.id, {"subscription_id": donation.subscription_id,
                                       "error": str(error)[:500]})
        return
    with ledger_write(session):
        donation = session.get(OnlineDonation, donation_id)
        move(donation, "cancelled")
        audit.append(session, STRIPE, "donation.subscription_cancelled", "online_donation",
                     donation.id, {"subscription_id": donation.subscription_id,
                                   "why": "a payment was rejected by the policy"})
