"""Written acknowledgements for donors, following US 501(c)(3) practice.

- A single gift of $250 or more (judged in the reporting currency: 250 of its major units,
  on the gift's converted amount net of refunds made so far) gets a written
  acknowledgement: the organisation's name (and EIN and address when configured), the
  date, the cash amount, or for a non-cash gift a description without a value, and a
  statement that no goods or services were provided in return, or a description and
  good-faith estimate of what was.
- An annual giving statement lists a donor's accepted gifts of a calendar year, of any
  size; it may replace per-gift letters.

Letters are plain data (Letter) with a canonical JSON form and its SHA-256. Sending is the
caller's business (app.mail, or the post); record_sent() then stores what was sent, how, to
whom and when, with an audit entry. Refunds created after an acknowledgement was sent are flagged by
refunded_after_acknowledgement(), since the donor holds a letter for money returned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, cast, extract, func, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound
from app.ledger import audit
from app.ledger.audit import Actor
from models import Acknowledgement, Donor, Gift, Refund
from models.disclosures import ACKNOWLEDGEMENT_CHANNELS
from models.money import currency_exponent, format_amount

#: The IRS threshold for a written acknowledgement of a single contribution, in major units.
THRESHOLD = Decimal(250)


def threshold_minor(currency: str) -> int:
    return int(THRESHOLD.scaleb(currency_exponent(currency)))


@dataclass(frozen=True)
class Organisation:
    name: str
    ein: str | None = None
    address: str | None = None
    #: The letterhead's logo (a PNG or JPEG file; ORG_LOGO_FILE): drawn on the PDF only, not
    #: part of the letter's text or its content hash.
    logo_file: str | None = None


@dataclass(frozen=True)
class Goods:
    """Goods or services provided in return for the contribution, valued in good faith."""

    description: str
    value_minor: int
    currency: str


@dataclass(frozen=True)
class LetterGift:
    gift_id: int
    received_on: date
    kind: str  # "cash" | "in_kind"
    #: Net of refunds, in the gift's currency; None for a non-cash gift (never valued).
    amount_minor: int | None
    currency: str
    description: str | None


@dataclass(frozen=True)
class Letter:
    kind: str  # "gift" | "annual"
    organisation: Organisation
    letter_date: date
    donor_id: int
    donor_name: str
    donor_email: str | None
    gifts: tuple[LetterGift, ...]
    gift_id: int | None = None
    year: int | None = None
    goods: Goods | None = None

    @property
    def totals(self) -> list[tuple[str, int]]:
        """Cash given, net of refunds, per currency (non-cash gifts are not valued)."""
        sums: dict[str, int] = {}
        for gift in self.gifts:
            if gift.amount_minor is not None:
                sums[gift.currency] = sums.get(gift.currency, 0) + gift.amount_minor
        return sorted(sums.items())

    @property
    def goods_statement(self) -> str:
        what = "this contribution" if self.kind == "gift" else "these contributions"
        if self.goods is None:
            return f"No goods or services were provided in exchange for {what}."
        return (f"In exchange for {what}, {self.organisation.name} provided "
                f"{self.goods.description}, with a good-faith estimated value of "
                f"{format_amount(self.goods.value_minor, self.goods.currency)} "
                f"{self.goods.currency}. The amount deductible for federal income tax purposes "
                "is limited to the excess of the money (and the value of property) contributed "
                "over the value of the goods or services provided.")

    def content(self) -> dict:
        return {
            "kind": self.kind,
            "organization": {"name": self.organisation.name, "ein": self.organisation.ein,
                             "address": self.organisation.address},
            "letter_date": self.letter_date.isoformat(),
            "donor": {"id": self.donor_id, "name": self.donor_name},
            "gift_id": self.gift_id,
            "year": self.year,
            "gifts": [
                {"gift_id": g.gift_id, "received_on": g.received_on.isoformat(), "kind": g.kind,
                 "amount": format_amount(g.amount_minor, g.currency)
                 if g.amount_minor is not None else None,
                 "currency": g.currency if g.amount_minor is not None else None,
                 "description": g.description}
                for g in self.gifts
            ],
            "totals": [{"currency": c, "amount": format_amount(m, c)} for c, m in self.totals],
            "goods_or_services": None if self.goods is None else {
                "description": self.goods.description,
                "estimated_value": format_amount(self.goods.value_minor, self.goods.currency),
                "currency": self.goods.currency,
            },
            "statement": self.goods_statement,
        }

    def canonical(self) -> str:
        return json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()


def gift_line(gift: LetterGift) -> str:
    if gift.amount_minor is None:
        return f"{gift.received_on.isoformat()}: non-cash gift: {gift.description or 'as described'}"
    amount = format_amount(gift.amount_minor, gift.currency)
    return f"{gift.received_on.isoformat()}: {amount} {gift.currency}"


def letter_text(letter: Letter) -> str:
    """The letter as plain text: the e-mail's body, and what the HTML and PDF show."""
    org = letter.organisation
    lines = [org.name]
    if org.address:
        lines += org.address.splitlines()
    if org.ein:
        lines.append(f"EIN {org.ein}")
    lines += ["", letter.letter_date.isoformat(), "", f"Dear {letter.donor_name},", ""]
    if letter.kind == "gift":
        gift = letter.gifts[0]
        if gift.amount_minor is None:
            lines.append(f"Thank you for your non-cash gift to {org.name}, received on "
                         f"{gift.received_on.isoformat()}: {gift.description or 'as described'}.")
        else:
            lines.append(f"Thank you for your gift to {org.name} of "
                         f"{format_amount(gift.amount_minor, gift.currency)} {gift.currency}, "
                         f"received on {gift.received_on.isoformat()}.")
    else:
        lines.append(f"Thank you for your gifts to {org.name} in {letter.year}:")
        lines.append("")
        lines += [f"  {gift_line(g)}" for g in letter.gifts]
        lines.append("")
        totals = "; ".join(f"{format_amount(m, c)} {c}" for c, m in letter.totals)
        lines.append(f"Total cash given in {letter.year}: {totals or 'none'}.")
        if any(g.amount_minor is None for g in letter.gifts):
            lines.append("Non-cash gifts are described, not valued.")
    lines += ["", letter.goods_statement, "",
              "Please keep this letter for your tax records.", "", "With gratitude,", org.name]
    return "\n".join(lines)


# --- which gifts, and the letters ---------------------------------------------------------------

def _refunded_reporting(session: Session, gift_ids: list[int]) -> dict[int, int]:
    if not gift_ids:
        return {}
    # PostgreSQL's SUM of a BIGINT is NUMERIC (a Decimal in Python): cast it back, so
    # amounts stay integer minor units.
    return dict(session.execute(
        select(Refund.gift_id, cast(func.sum(Refund.reporting_amount_minor), BigInteger))
        .where(Refund.gift_id.in_(gift_ids)).group_by(Refund.gift_id)
    ).all())


def net_reporting_minor(session: Session, gift: Gift) -> int:
    return gift.reporting_amount_minor - _refunded_reporting(session, [gift.id]).get(gift.id, 0)


def needs_acknowledgement(session: Session, gift: Gift) -> bool:
    """An accepted single gift of 250 or more in the reporting currency, net of refunds."""
    return (gift.status == "accepted"
            and net_reporting_minor(session, gift) >= threshold_minor(gift.reporting_currency))


def _letter_gift(gift: Gift) -> LetterGift:
    cash = gift.kind == "cash"
    return LetterGift(
        gift_id=gift.id, received_on=gift.received_on, kind=gift.kind,
        amount_minor=gift.amount_minor - gift.refunded_minor if cash else None,
        currency=gift.currency, description=gift.description,
    )


def gift_letter(session: Session, gift_id: int, organisation: Organisation, letter_date: date,
                goods: Goods | None = None) -> Letter:
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift", gift_id)
    if not needs_acknowledgement(session, gift):
        raise NotAllowed(
            f"gift {gift_id} needs no acknowledgement: only accepted gifts of "
            f"{format_amount(threshold_minor(gift.reporting_currency), gift.reporting_currency)} "
            f"{gift.reporting_currency} or more (net of refunds) get one")
    donor = session.get(Donor, gift.donor_id)
    return Letter(kind="gift", organisation=organisation, letter_date=letter_date,
                  donor_id=donor.id, donor_name=donor.name, donor_email=donor.email,
                  gifts=(_letter_gift(gift),), gift_id=gift.id, goods=goods)


def annual_letter(session: Session, donor_id: int, year: int, organisation: Organisation,
                  letter_date: date, goods: Goods | None = None) -> Letter:
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise NotFound("donor", donor_id)
    gifts = session.execute(
        select(Gift).where(Gift.donor_id == donor_id, Gift.status == "accepted",
                           Gift.received_on >= date(year, 1, 1),
                           Gift.received_on <= date(year, 12, 31))
        .order_by(Gift.received_on, Gift.id)
    ).scalars().all()
    kept = [g for g in gifts if g.kind != "cash" or g.refunded_minor < g.amount_minor]
    if not kept:
        raise NotFound(f"accepted gift of donor {donor_id} in", year)
    return Letter(kind="annual", organisation=organisation, letter_date=letter_date,
                  donor_id=donor.id, donor_name=donor.name, donor_email=donor.email,
                  gifts=tuple(_letter_gift(g) for g in kept), year=year, goods=goods)


@dataclass(frozen=True)
class Pending:
    gift: Gift
    donor: Donor
    net_reporting_minor: int


def _pending_query(reporting_currency: str):
    """Accepted gifts of 250 or more, net of refunds, that no acknowledgement was sent for:
    (Gift, Donor, net) rows. The refunds are netted in SQL so the list can be counted and
    paged there; the CAST keeps PostgreSQL's NUMERIC SUM an integer."""
    threshold = threshold_minor(reporting_currency)
    sent = select(Acknowledgement.gift_id).where(Acknowledgement.gift_id.is_not(None))
    refunded = (select(Refund.gift_id.label("gift_id"),
                       cast(func.sum(Refund.reporting_amount_minor), BigInteger).label("minor"))
                .group_by(Refund.gift_id).subquery())
    net = (Gift.reporting_amount_minor - func.coalesce(refunded.c.minor, 0)).label("net")
    return (
        select(Gift, Donor, net).join(Donor, Donor.id == Gift.donor_id)
        .outerjoin(refunded, refunded.c.gift_id == Gift.id)
        .where(Gift.status == "accepted", Gift.reporting_currency == reporting_currency,
               Gift.reporting_amount_minor >= threshold, net >= threshold,
               Gift.id.not_in(sent))
    )


#: What the pending list may be sorted by: (Gift, Donor, net) row columns.
PENDING_SORT = {"received": Gift.received_on, "id": Gift.id, "donor": func.lower(Donor.name),
                "amount": Gift.reporting_amount_minor}


def count_pending(session: Session, reporting_currency: str, conditions=()) -> int:
    """`conditions`: further WHERE clauses on Gift or Donor (a date range, a segment)."""
    query = _pending_query(reporting_currency).where(*conditions)
    return session.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def pending_acknowledgements(session: Session, reporting_currency: str, *, offset: int = 0,
                             limit: int = 50, conditions=(), order=None) -> list[Pending]:
    """One page of the gifts awaiting an acknowledgement, newest first unless `order` says
    otherwise (count_pending gives how many there are in all)."""
    rows = session.execute(
        _pending_query(reporting_currency).where(*conditions)
        .order_by(*(order or (Gift.received_on.desc(), Gift.id.desc())))
        .offset(offset).limit(limit)
    ).all()
    return [Pending(gift, donor, int(net)) for gift, donor, net in rows]


def record_sent(session: Session, letter: Letter, sent_to: str, actor: Actor,
                sent_at: datetime | None = None, channel: str = "email") -> Acknowledgement:
    """Store the acknowledgement that was sent (e-mailed, or posted: `channel`), with an
    audit entry."""
    if channel not in ACKNOWLEDGEMENT_CHANNELS:
        raise NotAllowed(f"an acknowledgement is sent by {' or '.join(ACKNOWLEDGEMENT_CHANNELS)}")
    with ledger_write(session):
        record = Acknowledgement(
            kind=letter.kind, donor_id=letter.donor_id, gift_id=letter.gift_id, year=letter.year,
            channel=channel, sent_to=sent_to, content=letter.canonical(),
            content_hash=letter.content_hash(),
            goods_description=letter.goods.description if letter.goods else None,
            goods_value_minor=letter.goods.value_minor if letter.goods else None,
            sent_by_id=actor.user_id,
        )
        if sent_at is not None:
            record.sent_at = sent_at
        session.add(record)
        session.flush()
        audit.append(session, actor, "acknowledgement.sent", "acknowledgement", record.id, {
            "kind": letter.kind, "donor_id": letter.donor_id, "gift_id": letter.gift_id,
            "year": letter.year, "channel": channel, "sent_to": sent_to,
            "content_hash": record.content_hash,
        }, sealed=[record])
    return record


def sent_for_gift(session: Session, gift_id: int) -> list[Acknowledgement]:
    return list(session.execute(
        select(Acknowledgement).where(Acknowledgement.gift_id == gift_id)
        .order_by(Acknowledgement.id)
    ).scalars())


def sent_for_year(session: Session, donor_id: int, year: int) -> list[Acknowledgement]:
    return list(session.execute(
        select(Acknowledgement).where(Acknowledgement.kind == "annual",
                                      Acknowledgement.donor_id == donor_id,
                                      Acknowledgement.year == year)
        .order_by(Acknowledgement.id)
    ).scalars())


@dataclass(frozen=True)
class RefundAfterAcknowledgement:
    acknowledgement: Acknowledgement
    gift: Gift
    refund: Refund
    donor: Donor


def refunded_after_acknowledgement(session: Session) -> list[RefundAfterAcknowledgement]:
    """Refunds recorded after an acknowledgement covering their gift was sent: the donor
    holds a letter for money that went back, so a corrected letter may be owed. A refund's
    reversal (a negative refund row: the money came back) is listed the same way, as a
    letter written between the refund and its reversal understates the gift."""
    per_gift = session.execute(
        select(Acknowledgement, Gift, Refund, Donor)
        .join(Gift, Gift.id == Acknowledgement.gift_id)
        .join(Refund, Refund.gift_id == Gift.id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(Acknowledgement.kind == "gift", Refund.created_at > Acknowledgement.sent_at)
    ).all()
    year = extract("year", Gift.received_on)
    annual = session.execute(
        select(Acknowledgement, Gift, Refund, Donor)
        .join(Gift, (Gift.donor_id == Acknowledgement.donor_id) & (year == Acknowledgement.year))
        .join(Refund, Refund.gift_id == Gift.id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(Acknowledgement.kind == "annual", Refund.created_at > Acknowledgement.sent_at)
    ).all()
    flags = [RefundAfterAcknowledgement(a, g, r, d) for a, g, r, d in [*per_gift, *annual]]
    return sorted(flags, key=lambda f: (f.refund.created_at, f.acknowledgement.id), reverse=True)
