"""Recurring gifts: monthly donations seen as Stripe reports them, and the staff's changes.

A monthly donation is a Stripe subscription started on the donate page. Its state here is
what Stripe last said: a snapshot of the subscription (status, paused, amount of the next
invoices, next charge) applied from the answer to a staff change and from the webhooks
customer.subscription.created/updated/deleted. A snapshot older than the one applied is
ignored (events arrive in any order), and one that changes nothing writes nothing, so the
same news twice (the staff answer, then its webhook) is recorded once.

A staff change asks Stripe first, with no transaction open; only Stripe's answer changes
anything here, under the ledger lock, with an audit entry naming who asked and what Stripe
answered. If Stripe refuses or cannot be reached, nothing here changes (StripeRefused,
StripeUnreachable).

Money still comes only from invoices: each renewal is a new gift through the one door when
its invoice is paid (app.payments.events), screened that day with the amount Stripe
charged. A new amount is never approved in advance; it is simply what the next invoice
charges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import stripe
from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import (
    NotAllowed,
    NotFound,
    StripeChangedNotRecorded,
    StripeRefused,
    StripeUnreachable,
    ValidationFailed,
)
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.giving import NetCash
from app.payments.gateway import StripeGateway, Subscription
from models import DonationGift, Donor, Gift, OnlineDonation, utcnow
from models.money import format_amount
from models.online import IllegalDonationMove, move_donation

log = logging.getLogger(__name__)

#: What the staff list calls a monthly donation's state.
STATUSES = ("active", "paused", "past_due", "cancelled")
#: Stripe statuses that mean the subscription is over.
ENDED = ("canceled", "incomplete_expired")
#: Stripe statuses that mean a payment is owed and being retried.
OWING = ("past_due", "unpaid")
#: What staff may ask of Stripe.
ACTIONS = ("pause", "resume", "change_amount", "cancel")

#: The status as one SQL expression (filters and counts), the same as status_of().
STATUS = case(
    (or_(OnlineDonation.state == "cancelled",
         OnlineDonation.subscription_status.in_(ENDED)), "cancelled"),
    (or_(OnlineDonation.collection_paused.is_(True),
         OnlineDonation.subscription_status == "paused"), "paused"),
    (OnlineDonation.subscription_status.in_(OWING), "past_due"),
    else_="active",
)

#: The monthly donations the list shows: subscribed (a Checkout that never completed has no
#: subscription and is no recurring gift).
RECURRING = and_(OnlineDonation.frequency == "monthly", OnlineDonation.subscription_id.is_not(None))


def status_of(donation: OnlineDonation) -> str:
    if donation.state == "cancelled" or donation.subscription_status in ENDED:
        return "cancelled"
    if donation.collection_paused or donation.subscription_status == "paused":
        return "paused"
    if donation.subscription_status in OWING:
        return "past_due"
    return "active"


# --- what Stripe says ------------------------------------------------------------------------

def apply_subscription(session: Session, donation: OnlineDonation, sub: Subscription,
                       at: datetime, timezone: ZoneInfo) -> dict:
    """Bring the donation to Stripe's snapshot made at `at`. Returns what changed ({field:
    [before, after]}; empty for a snapshot already applied or older than the last one)."""
    if donation.subscription_synced_at is not None and at < donation.subscription_synced_at:
        return {}
    next_at = sub.next_charge_at
    wanted = {
        "subscription_status": sub.status or donation.subscription_status,
        "collection_paused": sub.paused,
        "current_amount_minor": sub.amount_minor if sub.amount_minor is not None
        else donation.current_amount_minor,
        "next_charge_on": next_at.astimezone(timezone).date() if next_at else None,
    }
    changed = {name: [getattr(donation, name), value] for name, value in wanted.items()
               if getattr(donation, name) != value}
    for name, (_before, value) in changed.items():
        setattr(donation, name, value)
    donation.subscription_synced_at = at
    if sub.status in ENDED and donation.state != "cancelled":
        try:
            move_donation(donation, "cancelled")
            changed["state"] = ["active", "cancelled"]
        except IllegalDonationMove:  # a subscription that never became active here
            log.warning("online donation %s: Stripe ended subscription %s from state %s",
                        donation.id, sub.id, donation.state)
    if changed:
        donation.updated_at = utcnow()
        session.flush()
    return changed


def jsonable(changed: dict) -> dict:
    return {name: [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
            for name, values in changed.items()}


# --- staff changes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Changed:
    donation: OnlineDonation
    action: str
    stripe: Subscription
    #: What the answer changed here ({} when a webhook had already brought it).
    changed: dict


def _changeable(session: Session, donation_id: int) -> OnlineDonation:
    donation = session.get(OnlineDonation, donation_id)
    if donation is None or donation.frequency != "monthly":
        raise NotFound("monthly donation", donation_id)
    if donation.subscription_id is None:
        raise NotAllowed(f"monthly donation {donation_id} has no Stripe subscription yet")
    if status_of(donation) == "cancelled":
        raise NotAllowed(f"monthly donation {donation_id} is cancelled")
    return donation


def _ask_stripe(gw: StripeGateway | None, sub_id: str, action: str,
                amount_minor: int | None) -> Subscription:
    if gw is None:
        raise StripeUnreachable("Stripe is not configured here (STRIPE_SECRET_KEY): nothing "
                                "was changed")
    try:
        if action == "pause":
            return gw.pause_subscription(sub_id)
        if action == "resume":
            return gw.resume_subscription(sub_id)
        if action == "cancel":
            return gw.cancel_subscription(sub_id)
        return gw.change_subscription_amount(sub_id, amount_minor)
    except stripe.APIConnectionError as error:
        log.warning("Stripe unreachable for %s of subscription %s: %s", action, sub_id, error)
        raise StripeUnreachable("Stripe could not be reached: nothing was changed. Try again "
                                "in a moment.") from None
    except stripe.StripeError as error:
        message = error.user_message or str(error)
        log.warning("Stripe refused %s of subscription %s: %s", action, sub_id, message)
        raise StripeRefused(f"Stripe refused to {action.replace('_', ' ')}: {message}. "
                            "Nothing was changed.") from None


def change(session: Session, gw: StripeGateway | None, donation_id: int, action: str,
           actor: Actor, timezone: ZoneInfo, amount_minor: int | None = None,
           max_amount_minor: int | None = None) -> Changed:
    """Pause, resume, change the amount of, or cancel a monthly donation, through Stripe.

    Stripe is asked with no transaction open (no lock held across the network); its answer
    is then applied under the ledger lock with an audit entry by `actor`."""
    if action not in ACTIONS:
        raise ValueError(action)
    donation = _changeable(session, donation_id)
    if action == "change_amount" and (amount_minor is None or amount_minor <= 0):
        raise NotAllowed("a new monthly amount must be more than zero")
    if action == "change_amount" and max_amount_minor is not None \
            and amount_minor > max_amount_minor:
        raise ValidationFailed({"amount": [
            f"must not be more than {format_amount(max_amount_minor, donation.currency)}, the "
            "largest gift this installation takes (MAX_GIFT_MINOR)"]})
    if action == "pause" and donation.collection_paused:
        raise NotAllowed(f"monthly donation {donation_id} is already paused")
    if action == "resume" and not donation.collection_paused:
        raise NotAllowed(f"monthly donation {donation_id} is not paused")
    before = {"status": status_of(donation), "amount_minor": donation.monthly_amount_minor}
    sub_id = donation.subscription_id
    requested = {"action": action, "before": before}
    if amount_minor is not None:
        requested["requested_amount"] = format_amount(amount_minor, donation.currency)
    # Who asked is written (and committed) before Stripe is asked: if recording Stripe's
    # answer fails afterwards, the change still has a name on it, not only Stripe's
    # notification's. No transaction (lock, snapshot) stays open across the call to Stripe;
    # the donation is read again under the lock.
    with ledger_write(session):
        audit.append(session, actor, "donation.subscription_change_requested",
                     "online_donation", donation_id, requested)
    answered_at = utcnow()
    sub = _ask_stripe(gw, sub_id, action, amount_minor)
    try:
        with ledger_write(session):
            donation = session.get(OnlineDonation, donation_id)
            changed = apply_subscription(session, donation, sub, answered_at, timezone)
            entry = {**requested, "stripe": sub.as_dict(), "changed": jsonable(changed)}
            audit.append(session, actor, f"donation.subscription_{action}", "online_donation",
                         donation.id, entry)
    except Exception as error:
        log.error("Stripe made %s of subscription %s; recording it failed: %r", action, sub_id,
                  error)
        raise StripeChangedNotRecorded(
            f"Stripe made the change ({action.replace('_', ' ')}), but recording it here "
            "failed; Stripe's notification will bring it. Do not ask again.") from error
    return Changed(donation, action, sub, changed)


# --- the list --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecurringRow:
    donation: OnlineDonation
    donor: Donor | None
    status: str
    #: Accepted cash net of refunds of the gifts it paid, reporting currency (minor units).
    lifetime_minor: int
    gifts: int


def lifetime_values(session: Session, currency: str,
                    donation_ids: list[int]) -> dict[int, tuple[int, int]]:
    """donation id -> (net cash minor, gifts) of the gifts each donation paid (NetCash, the one
    reader of giving)."""
    if not donation_ids:
        return {}
    paid = select(DonationGift.gift_id).where(DonationGift.donation_id.in_(donation_ids))
    cash = NetCash(currency, Gift.id.in_(paid))
    query = (cash.select(DonationGift.donation_id, func.sum(cash.net), func.count())
             .join(DonationGift, DonationGift.gift_id == Gift.id)
             .group_by(DonationGift.donation_id))
    return {d: (int(total or 0), int(n)) for d, total, n in session.execute(query)}


def recurring_query(status: str | None = None, donor_id: int | None = None):
    query = select(OnlineDonation).where(RECURRING)
    if status in STATUSES:
        query = query.where(STATUS == status)
    if donor_id is not None:
        query = query.where(or_(OnlineDonation.donor_id == donor_id,
                                OnlineDonation.payer_donor_id == donor_id))
    return query.order_by(OnlineDonation.created_at.desc(), OnlineDonation.id.desc())


def rows_for(session: Session, donations: list[OnlineDonation], currency: str) -> list[RecurringRow]:
    values = lifetime_values(session, currency, [d.id for d in donations])
    donor_ids = {d.donor_id or d.payer_donor_id for d in donations} - {None}
    donors = {d.id: d for d in session.execute(
        select(Donor).where(Donor.id.in_(donor_ids))).scalars()} if donor_ids else {}
    return [RecurringRow(d, donors.get(d.donor_id or d.payer_donor_id), status_of(d),
                         *values.get(d.id, (0, 0))) for d in donations]


def counts(session: Session) -> dict[str, int]:
    found = dict(session.execute(
        select(STATUS, func.count()).where(RECURRING).group_by(STATUS)).all())
    return {status: int(found.get(status, 0)) for status in STATUSES}

