"""Online giving through Stripe: pending donations, processed events, settlements,
refunds that arrived before their payment, and disputes.

Gifts themselves are ordinary Gift rows written by the ledger's one door; these
tables hold what Stripe tells us around them.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

FREQUENCIES = ("once", "monthly")
#: created: screened and stored, no Checkout Session yet; open: session created;
#: paid: a one-off payment arrived; active: a monthly subscription runs; failed: the
#: (delayed) payment failed; expired: the donor never paid; cancelled: the subscription
#: ended; error: the session could not be created.
#: What became of a lab role declared on the form (None: none was declared).
#: declared: stored, waiting for the payment; recorded: at the payment it became the
#: affiliation of the donor record this donation created (or the record already said so);
#: to_review: it differs from an existing donor's record, so the gift is held for a
#: reviewer; applied / dismissed: the reviewer's answer.
DECLARATION_STATES = ("declared", "recorded", "to_review", "applied", "dismissed")
DONATION_STATES = ("created", "open", "error", "paid", "active", "failed", "expired", "cancelled")

#: Allowed moves. Events arrive out of order, so a move not listed is refused and the
#: caller leaves the state as it is (a late "completed" never revives a cancelled plan).
DONATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"open", "error", "paid", "active", "failed", "expired"}),
    "open": frozenset({"paid", "active", "failed", "expired"}),
    "error": frozenset(),
    "paid": frozenset(),
    "active": frozenset({"cancelled"}),
    "failed": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}


def new_reference() -> str:
    return secrets.token_hex(16)


class IllegalDonationMove(Exception):
    """A state change of an online donation that its history does not allow."""

    def __init__(self, donation_id: int | None, current: str, requested: str):
        super().__init__(f"online donation {donation_id}: cannot move from {current!r} to "
                         f"{requested!r}")
        self.current = current
        self.requested = requested


class OnlineDonation(SQLModel, table=True):
    """A donation started on the public form: screened, then sent to Stripe Checkout.

    Webhook events find it by the Stripe ids stored here (the Checkout Session's, then the
    payment intent's or the subscription's as Stripe reports them), and their metadata must
    carry this installation's id and this donation's `reference` (app.payments.matching).
    """

    __tablename__ = "online_donation"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(in_list("frequency", FREQUENCIES), name="frequency"),
        CheckConstraint(in_list("state", DONATION_STATES), name="state"),
        CheckConstraint(in_list("preview_outcome", ("accept", "hold")), name="preview_outcome"),
        CheckConstraint(in_list("declaration_state", DECLARATION_STATES),
                        name="declaration_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The person who filled in the form: the donor with the e-mail typed, found at the
    #: screening; None while no donor has it: the record is created when the payment
    #: arrives (app.payments.recording.resolve_donors), never by an unpaid form.
    donor_id: int | None = Field(default=None, foreign_key="donor.id", index=True)
    #: The gift's donor: the person, or the donor-advised fund's sponsor (found by name at
    #: the screening, else created when the payment arrives, like donor_id).
    payer_donor_id: int | None = Field(default=None, foreign_key="donor.id")
    #: The name and e-mail typed, for the record made at the payment when no donor had the
    #: e-mail (None on donations stored before revision 0022).
    donor_name: str | None = Field(default=None, max_length=200)
    donor_email: str | None = Field(default=None, max_length=320)
    #: Per payment, in the currency's minor units (yen for JPY).
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    frequency: str = Field(default="once", max_length=10)
    #: What the donor declared, as typed: a claim, never written to an existing donor's
    #: record without a reviewer (see declaration_state).
    declared_employer: str | None = Field(default=None, max_length=200)
    declared_lab_id: int | None = Field(default=None, foreign_key="organization.id")
    declared_senior: bool = Field(default=False)
    via_daf: bool = Field(default=False)
    #: The donor-advised fund's sponsor and the advisor's name on the fund account.
    daf_sponsor: str | None = Field(default=None, max_length=200)
    daf_advisor: str | None = Field(default=None, max_length=200)
    #: This donation created the donor record (no donor had its e-mail; at the payment
    #: since revision 0022, at the screening before): at the payment its declaration
    #: becomes that record's affiliation.
    donor_created: bool = Field(default=False)
    declaration_state: str | None = Field(default=None, max_length=10)
    #: The gift held because the declaration differs from the record: what a reviewer decides.
    declaration_gift_id: int | None = Field(default=None, foreign_key="gift.id")
    #: List this gift publicly without the donor's name.
    anonymous: bool = Field(default=False)
    #: The policy's verdict on the dry run before payment (a reject never gets this far).
    preview_outcome: str = Field(default="accept", max_length=10)
    policy_version: str = Field(max_length=50)
    #: The active campaign the donate link named (/donate?campaign=code), checked when the
    #: form was sent; its gifts carry it. Not in the row's seal (the seal's columns predate
    #: it): the donation.started audit entry records it, and each gift's designation is
    #: sealed with the gift.
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    #: A random value unique to this donation in any installation, sent in the metadata of
    #: its Checkout Session, payment intent and subscription and compared on every event (form
    #: numbers repeat across installations sharing a Stripe account and after a restore from
    #: a backup). None: started before revision 0013, when the metadata carried only ids.
    reference: str | None = Field(default_factory=new_reference, max_length=32, unique=True)
    checkout_session_id: str | None = Field(default=None, max_length=255, unique=True)
    #: One-off donations: the payment intent that paid it.
    payment_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    subscription_id: str | None = Field(default=None, max_length=255, unique=True)
    customer_id: str | None = Field(default=None, max_length=255)
    state: str = Field(default="created", max_length=10, index=True)
    #: Something staff must look at (a subscription stopped by the policy, a failed payment).
    attention: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Monthly donations: the subscription as Stripe last reported it (revision 0032). These
    # are Stripe's facts, kept for the staff list (app.payments.recurring); never sealed,
    # like the Stripe ids and state above, and never read by the policy: each renewal gift
    # is screened at its invoice with the amount Stripe charged.
    #: Stripe's subscription status (active, past_due, unpaid, canceled, paused, ...).
    subscription_status: str | None = Field(default=None, max_length=20)
    #: Stripe's pause_collection is set: invoices are voided, nobody is charged.
    collection_paused: bool = Field(default=False)
    #: The amount of each future invoice (minor units of `currency`) as Stripe last said;
    #: None: never reported, so the amount the donor chose (amount_minor).
    current_amount_minor: int | None = Field(default=None,
                                             sa_column=Column(BigInteger, nullable=True))
    #: The day (organisation's time zone) Stripe will next charge; None: not known, or none.
    next_charge_on: date | None = None
    #: Failed monthly payments reported by Stripe (invoice.payment_failed, once per event).
    failed_payments: int = Field(default=0)
    #: When Stripe made the snapshot last applied: an older one arriving late is ignored.
    subscription_synced_at: datetime | None = None

    @property
    def monthly_amount_minor(self) -> int:
        return self.amount_minor if self.current_amount_minor is None \
            else self.current_amount_minor


class DonationGift(SQLModel, table=True):
    """Which online donation a gift was paid for: a monthly donation's lifetime value is the
    net cash of its gifts (app.ledger.giving). Written with the gift by the webhook; a table
    of its own, since a new column on gift would change every gift's seal."""

    __tablename__ = "online_donation_gift"

    id: int | None = Field(default=None, primary_key=True)
    donation_id: int = Field(foreign_key="online_donation.id", index=True)
    gift_id: int = Field(foreign_key="gift.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)


def move_donation(donation: OnlineDonation, new_state: str) -> None:
    """The only place an online donation's state changes."""
    if new_state == donation.state:
        return
    if new_state not in DONATION_TRANSITIONS.get(donation.state, frozenset()):
        raise IllegalDonationMove(donation.id, donation.state, new_state)
    donation.state = new_state
    donation.updated_at = utcnow()


class StripeEvent(SQLModel, table=True):
    """A webhook event already processed: written in the same transaction as its work."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    #: When Stripe created the event.
    created: datetime
    processed_at: datetime = Field(default_factory=utcnow)
    #: What the event did, for people reading the table ("gift 12 recorded", "ignored: ...").
    outcome: str = Field(default="", max_length=500)


class StripeInstall(SQLModel, table=True):
    """This installation's random id (one row), sent in every Checkout Session's metadata so
    that events of another installation sharing the Stripe account are told apart."""

    __tablename__ = "stripe_install"

    id: int | None = Field(default=None, primary_key=True)
    install_id: str = Field(max_length=32, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class StripeUnmatchedEvent(SQLModel, table=True):
    """An event about a payment, a Checkout Session or a subscription that matched no online
    donation here: acknowledged to Stripe, recorded nowhere else, listed for staff.

    Only this site's own metadata keys are kept (what the event claimed), never the rest of a
    foreign object's metadata, which may hold another system's personal data.
    """

    __tablename__ = "stripe_unmatched_event"

    event_id: str = Field(primary_key=True, foreign_key="stripe_event.id", max_length=255)
    event_type: str = Field(max_length=100)
    #: The Stripe object the event is about (cs_..., pi_..., in_..., sub_...).
    object_id: str | None = Field(default=None, max_length=255)
    #: What the metadata claimed: an installation id, and a donation reference or form number.
    claimed_install: str | None = Field(default=None, max_length=100)
    claimed_donation: str | None = Field(default=None, max_length=100)
    reason: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class StripeSettlement(SQLModel, table=True):
    """What Stripe settled for a gift's payment (its balance transaction): for reconciliation."""

    __tablename__ = "stripe_settlement"
    __table_args__ = (
        CheckConstraint("gross_minor >= 0 AND fee_minor >= 0", name="amounts_not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", unique=True)
    payment_intent_id: str = Field(max_length=255, index=True)
    charge_id: str | None = Field(default=None, max_length=255)
    balance_transaction_id: str = Field(max_length=255, unique=True)
    #: Gross, fee and net in the settlement currency's minor units.
    gross_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    net_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    settlement_currency: str = Field(max_length=3)
    #: Stripe's conversion rate from the charge currency, when it converted.
    exchange_rate: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class DeferredRefund(SQLModel, table=True):
    """A Stripe refund whose payment has not been recorded yet (events arrive out of order).

    Applied through the ledger's refund_gift as soon as the payment's gift is recorded.
    """

    __tablename__ = "stripe_deferred_refund"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(in_list("state", ("waiting", "applied")), name="state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_refund_id: str = Field(max_length=255, unique=True)
    payment_intent_id: str = Field(max_length=255, index=True)
    charge_id: str | None = Field(default=None, max_length=255)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    refunded_on: date
    reason: str | None = Field(default=None, max_length=500)
    state: str = Field(default="waiting", max_length=10)
    #: The ledger refund it became.
    refund_id: int | None = Field(default=None, foreign_key="refund.id")
    created_at: datetime = Field(default_factory=utcnow)
    applied_at: datetime | None = None


class StripeDispute(SQLModel, table=True):
    """A card dispute (chargeback). A lost one returned the money: it is recorded as a refund."""

    __tablename__ = "stripe_dispute"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    stripe_dispute_id: str = Field(max_length=255, unique=True)
    #: The disputed gift; None until the payment's gift is recorded.
    gift_id: int | None = Field(default=None, foreign_key="gift.id", index=True)
    payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    charge_id: str | None = Field(default=None, max_length=255)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    reason: str | None = Field(default=None, max_length=100)
    #: Stripe's status: needs_response, under_review, won, lost, warning_closed, ...
    status: str = Field(max_length=40)
    opened_on: date
    closed_at: datetime | None = None
    #: For a lost dispute: the ledger refund that records the money taken back.
    refund_id: int | None = Field(default=None, foreign_key="refund.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


#: What became of a refused declaration: waiting (later attempts from its e-mail are
#: screened with it), dismissed (a reviewer did not believe it: no longer used).
REFUSED_DECLARATION_STATES = ("waiting", "dismissed")


class RefusedDeclaration(SQLModel, table=True):
    """A lab role declared on the donate form whose gift the policy refused before any
    payment, kept by the e-mail typed: a second attempt from that e-mail that leaves the
    role out is screened with it too (app.payments.screening). Anyone can type anyone's
    e-mail, so it never changes a donor's record: for an e-mail a donor already has it
    only holds that attempt's gift for a reviewer, who sees it on the donor's page."""

    __tablename__ = "refused_declaration"
    __table_args__ = (
        CheckConstraint(in_list("state", REFUSED_DECLARATION_STATES), name="state"),
        # One waiting row per e-mail and claim: anyone can submit the form, and a repeated
        # claim must not grow the table (app.ledger.declarations.keep_refusal).
        Index("uq_refused_declaration_waiting_claim", "email_key", "declared_lab_id",
              "declared_senior", unique=True, sqlite_where=text("state = 'waiting'"),
              postgresql_where=text("state = 'waiting'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The e-mail typed, stripped and case-folded (policies.identity.email_key), as Donor.email_key.
    email_key: str = Field(max_length=320, index=True)
    declared_lab_id: int = Field(foreign_key="organization.id")
    declared_senior: bool = Field(default=False)
    declared_employer: str | None = Field(default=None, max_length=200)
    #: The rules that refused the gift, and the policy version that did.
    rules: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    policy_version: str = Field(max_length=50)
    state: str = Field(default="waiting", max_length=10)
    #: Who dismissed it and why (the audit trail has the same).
    dismissed_by: str | None = Field(default=None, max_length=320)
    dismissed_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
