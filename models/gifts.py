"""Gifts, their attributions, refunds and the append-only decisions about them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

GIFT_KINDS = ("cash", "in_kind")
GIFT_PURPOSES = ("general", "restricted", "evaluation_services")
GIFT_STATUSES = ("pending", "accepted", "held", "rejected", "failed")
OUTCOMES = ("accept", "hold", "reject")
DECISION_KINDS = ("screening", "rescreen", "review", "override")
ATTRIBUTION_BASES = ("donor", "explicit", "daf_advisor", "employer_match")
#: A tribute gift is given "in honour of" or "in memory of" a named person.
TRIBUTE_KINDS = ("honour", "memory")

#: Allowed status moves. Anything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "held", "rejected", "failed"}),
    "held": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"held"}),  # re-screening pulls an accepted gift back for review
    "rejected": frozenset({"accepted", "held"}),  # approved override; re-screen of a rejected gift
    "failed": frozenset(),
}

OUTCOME_STATUS = {"accept": "accepted", "hold": "held", "reject": "rejected"}


class IllegalTransition(Exception):
    """A gift status move that the ledger does not allow."""

    def __init__(self, gift_id: int | None, current: str, requested: str):
        super().__init__(f"gift {gift_id}: cannot move from {current!r} to {requested!r}")
        self.current = current
        self.requested = requested


class Gift(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("reporting_amount_minor >= 0", name="reporting_amount_not_negative"),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refund_within_amount"
        ),
        CheckConstraint("lab_minor >= 0 AND lab_minor <= reporting_amount_minor", name="lab_part"),
        CheckConstraint(in_list("kind", GIFT_KINDS), name="kind"),
        CheckConstraint(in_list("purpose", GIFT_PURPOSES), name="purpose"),
        CheckConstraint(in_list("status", GIFT_STATUSES), name="status"),
        Index("ix_gift_status_received_on", "status", "received_on"),
        # The dashboard's "lab payments for evaluations accepted" reads only these gifts.
        Index("ix_gift_purpose_status", "purpose", "status"),
        # The funding mix sums the gifts organisations gave in a date range from this index
        # alone (kind and amount included); the public-support test sums the five years per
        # year and per donor from it, the reporting currency included (migration 0037).
        Index("ix_gift_donor_status_received_on", "donor_id", "status", "received_on", "kind",
              "reporting_amount_minor", "reporting_currency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    #: Amount in the gift currency's minor units (cents; yen for JPY).
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    #: Amount converted to the reporting currency when recorded; never recomputed.
    reporting_amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    reporting_currency: str = Field(max_length=3)
    #: Reporting-currency units per one gift-currency unit, as a decimal string ("1" if same).
    fx_rate: str = Field(default="1", max_length=32)
    fx_source: str = Field(default="identity", max_length=100)
    #: The gift's date in the organisation's time zone.
    received_on: date = Field(index=True)
    method: str = Field(default="other", max_length=40)
    kind: str = Field(default="cash", max_length=10)
    purpose: str = Field(default="general", max_length=30)
    description: str | None = Field(default=None, max_length=1000)
    status: str = Field(default="pending", max_length=10)
    #: Total refunded so far, in the gift currency.
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: Lab-employee-attributed part in reporting units, fixed by the latest acceptance.
    lab_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: Policy wants this gift in the conflict-of-interest disclosure (lab in-kind support).
    disclose: bool = Field(default=False)
    pledge_id: int | None = Field(default=None, foreign_key="pledge.id", index=True)
    #: For an employer matching gift: the employee's gift it matches.
    matching_gift_for_id: int | None = Field(default=None, foreign_key="gift.id")
    #: Caller-supplied idempotency reference (import row key, integration id).
    external_ref: str | None = Field(default=None, max_length=200, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=100, unique=True)
    stripe_checkout_session_id: str | None = Field(default=None, max_length=100, unique=True)
    stripe_invoice_id: str | None = Field(default=None, max_length=100, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    #: Goods or services the organisation gave in return (a dinner, a book): what the
    #: acknowledgement's quid-pro-quo statement describes. None: nothing was provided.
    goods_description: str | None = Field(default=None, max_length=1000)
    #: Their good-faith fair-market value, in the gift currency's minor units (0 allowed:
    #: insubstantial). Set with goods_description, or neither.
    goods_value_minor: int | None = Field(default=None, sa_column=Column(
        BigInteger,
        # Both goods facts or neither, never a negative value. A check on this column
        # (not the table): SQLite can then drop the column in place (migration 0031).
        CheckConstraint("(goods_description IS NULL) = (goods_value_minor IS NULL) "
                        "AND (goods_value_minor IS NULL OR goods_value_minor >= 0)",
                        name="goods_or_services"),
        nullable=True))

    @property
    def refund_status(self) -> str:
        if self.refunded_minor == 0:
            return "none"
        return "full" if self.refunded_minor >= self.amount_minor else "partial"

    @property
    def counts_as_funding(self) -> bool:
        return self.status == "accepted" and self.kind == "cash"


class GiftTribute(SQLModel, table=True):
    """A tribute gift: given in honour or in memory of a named person, perhaps with someone
    to tell (a family member), who gets a notification letter that never states the amount.
    At most one row per gift, written with the gift; a gift that is no tribute has none."""

    __tablename__ = "gift_tribute"
    __table_args__ = (
        CheckConstraint(in_list("kind", TRIBUTE_KINDS), name="kind"),
        # An address needs someone to address it to.
        CheckConstraint("notify_address IS NULL OR notify_name IS NOT NULL", name="notify_named"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", unique=True)
    #: "honour" or "memory".
    kind: str = Field(max_length=10)
    #: The person honoured or remembered.
    honoree_name: str = Field(max_length=200)
    #: Who is told of the gift, and their postal address (for the notification letter).
    notify_name: str | None = Field(default=None, max_length=200)
    notify_address: str | None = Field(default=None, max_length=500)


def transition(gift: Gift, new_status: str) -> None:
    """The only place a gift's status changes."""
    if new_status not in TRANSITIONS.get(gift.status, frozenset()):
        raise IllegalTransition(gift.id, gift.status, new_status)
    gift.status = new_status


class Attribution(SQLModel, table=True):
    """Who the money really comes from: a share of the gift credited to a donor."""

    __table_args__ = (
        CheckConstraint("fraction_ppm > 0 AND fraction_ppm <= 1000000", name="fraction_range"),
        CheckConstraint(in_list("basis", ATTRIBUTION_BASES), name="basis"),
        # The funding mix reads the shares naming an organisation that may be on someone
        # else's gift (explicit, DAF advisor): few, found without reading the others.
        Index("ix_attribution_donor_basis", "donor_id", "basis"),
        # ... and the shares of the gifts organisations gave, from this index alone.
        Index("ix_attribution_gift_donor_ppm", "gift_id", "donor_id", "fraction_ppm"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", index=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    #: Fraction in millionths: exact decimals with six places; a gift's rows sum to 1,000,000.
    fraction_ppm: int
    basis: str = Field(default="donor", max_length=20)


class Refund(SQLModel, table=True):
    """Money returned to the donor, or (reverses_refund_id set) a refund reversed: Stripe
    reported it failed later, so the money came back to us on refunded_on.

    A reversal is a row of its own with the negated amounts, never an edit of the refund:
    the refund stays in history, and everything that sums a gift's refunds dated on or
    before a day (the trailing windows, the funding tables, disclosures, exports,
    acknowledgements) counts the reversal from its own date without knowing it exists.
    A separate reversal table would have had every one of those readers subtract it."""

    __table_args__ = (
        # A refund returns money (positive); a reversal takes a refund back (negative).
        # Reporting amounts may round to zero, never to the other sign.
        CheckConstraint(
            "(reverses_refund_id IS NULL AND amount_minor > 0 AND reporting_amount_minor >= 0)"
            " OR (reverses_refund_id IS NOT NULL AND amount_minor < 0"
            " AND reporting_amount_minor <= 0)", name="amount_sign"),
        CheckConstraint("refunded_on >= gift_received_on", name="not_before_gift"),
        Index("ix_refund_gift_received_on", "gift_received_on"),
        # Window sums add back the refunds made after the window's end (few or none).
        Index("ix_refund_refunded_on", "refunded_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", index=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    reporting_amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: Refunds (and reversals) count only in windows ending on or after this date.
    refunded_on: date
    #: Copy of the gift's date so window sums find refunds without scanning gifts.
    gift_received_on: date
    reason: str | None = Field(default=None, max_length=500)
    stripe_refund_id: str | None = Field(default=None, max_length=100, unique=True)
    #: For a reversal: the refund it takes back (at most one reversal per refund).
    reverses_refund_id: int | None = Field(default=None, foreign_key="refund.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")

    @property
    def is_reversal(self) -> bool:
        return self.reverses_refund_id is not None


class Decision(SQLModel, table=True):
    """One verdict on a gift. Never updated: later verdicts are new rows."""

    __table_args__ = (
        CheckConstraint(in_list("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(in_list("kind", DECISION_KINDS), name="kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", index=True)
    outcome: str = Field(max_length=10)
    kind: str = Field(default="screening", max_length=20)
    policy_version: str = Field(max_length=50)
    #: Every rule evaluated: [{rule, outcome, fired, message}].
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Figures used: shares before/after, headroom, windows checked.
    figures: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: The reviewer's written reason for a review or override. Internal: never published.
    note: str | None = Field(default=None, sa_column=Column(Text))
    #: The justification the disclosure may publish when this decision accepts an exception
    #: to a public promise (app.ledger.disclosure); None: no public justification given.
    public_note: str | None = Field(default=None, sa_column=Column(Text))
    decided_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    #: For an override of a reject: the second person who approved it.
    approved_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class OverrideRequest(SQLModel, table=True):
    """A reviewer's request to accept a rejected gift, waiting for a second reviewer."""

    __tablename__ = "override_request"
    __table_args__ = (
        CheckConstraint(in_list("state", ("pending", "approved", "declined")), name="state"),
        CheckConstraint(
            "decided_by_id IS NULL OR decided_by_id <> requested_by_id", name="second_person"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", index=True)
    outcome: str = Field(default="accept", max_length=10)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    #: The public justification the override decision will carry (see Decision.public_note).
    public_note: str | None = Field(default=None, sa_column=Column(Text))
    requested_by_id: int = Field(foreign_key="staff_user.id")
    requested_at: datetime = Field(default_factory=utcnow)
    state: str = Field(default="pending", max_length=10)
    decided_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime | None = None


def _refuse_change(mapper, connection, target):  # noqa: ARG001 - SQLAlchemy event signature
    raise AppendOnlyViolation(f"{type(target).__name__} {target.id} is append-only")


class AppendOnlyViolation(RuntimeError):
    """Someone tried to edit or delete a decision or an audit entry."""


def make_append_only(*classes) -> None:
    """Decisions and audit entries are never edited or deleted through the ORM."""
    from sqlalchemy import event

    for cls in classes:
        event.listen(cls, "before_update", _refuse_change)
        event.listen(cls, "before_delete", _refuse_change)


make_append_only(Decision)
