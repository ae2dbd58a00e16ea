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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, cast, extract, func, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound
from app.ledger import audit, letter_format
from app.ledger.audit import Actor
from app.ledger.letter_format import DEFAULT_LOCALE
from app.ledger.tributes import KIND_WORDS, tribute_of
from models import Acknowledgement, Donor, Gift, Refund
from models.disclosures import ACKNOWLEDGEMENT_CHANNELS
from models.money import currency_exponent, format_amount

#: The IRS threshold for a written acknowledgement of a single contribution, in major units.
THRESHOLD = Decimal(250)
#: A payment of more than this (major units) that is partly for goods or services is a
#: "quid pro quo contribution": the written disclosure must state the good-faith value of
#: what was provided and that only the excess is deductible (IRS Publication 1771, Charitable
#: Contributions: Substantiation and Disclosure Requirements; 26 U.S.C. 6115).
QUID_PRO_QUO_THRESHOLD = Decimal(75)


def threshold_minor(currency: str) -> int:
    return int(THRESHOLD.scaleb(currency_exponent(currency)))


def quid_pro_quo_minor(currency: str) -> int:
    return int(QUID_PRO_QUO_THRESHOLD.scaleb(currency_exponent(currency)))


@dataclass(frozen=True)
class Organisation:
    name: str
    ein: str | None = None
    address: str | None = None
    #: The letterhead's logo (a PNG or JPEG file; ORG_LOGO_FILE): drawn on the PDF only, not
    #: part of the letter's text or its content hash.
    logo_file: str | None = None
    #: How dates and amounts are written for people (ORG_LOCALE; app.ledger.letter_format).
    locale: str = DEFAULT_LOCALE

    @classmethod
    def from_settings(cls, config: Mapping) -> Organisation:
        """The letterhead from the app's settings (ORG_NAME, ORG_EIN, ORG_ADDRESS,
        ORG_LOGO_FILE, ORG_LOCALE)."""
        return cls(name=config["ORG_NAME"], ein=config.get("ORG_EIN") or None,
                   address=config.get("ORG_ADDRESS") or None,
                   logo_file=config.get("ORG_LOGO_FILE") or None,
                   locale=config.get("ORG_LOCALE") or DEFAULT_LOCALE)


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
    #: What the gift bought, as recorded with it (same currency), or None.
    goods: Goods | None = None
    #: More than the quid-pro-quo threshold (75 in the reporting currency): the letter must
    #: then state the goods' value and the deductible amount.
    quid_pro_quo: bool = False

    @property
    def deductible_minor(self) -> int | None:
        """The part the donor may deduct: the cash given, less the value of what it bought
        (never below zero). None for a non-cash gift (the donor values it)."""
        if self.amount_minor is None:
            return None
        if self.goods is None:
            return self.amount_minor
        return max(0, self.amount_minor - self.goods.value_minor)


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
    #: Goods typed on the letter page for a gift recorded without them (older gifts): for
    #: the letter as a whole. A gift's own recorded goods are on its LetterGift.
    goods: Goods | None = None
    #: Where the donor receives post (Donor.postal_address), printed above the greeting.
    donor_address: str | None = None

    @property
    def locale(self) -> str:
        return self.organisation.locale

    def money(self, minor: int, currency: str) -> str:
        return letter_format.money(minor, currency, self.locale)

    def day(self, value: date) -> str:
        return letter_format.day(value, self.locale)

    @property
    def totals(self) -> list[tuple[str, int]]:
        """Cash given, net of refunds, per currency (non-cash gifts are not valued)."""
        return _sum_by_currency((g.currency, g.amount_minor) for g in self.gifts)

    @property
    def deductible_totals(self) -> list[tuple[str, int]]:
        """The deductible part of the cash given, per currency."""
        return _sum_by_currency((g.currency, g.deductible_minor) for g in self.gifts)

    @property
    def goods_statement(self) -> str:
        what = "this contribution" if self.kind == "gift" else "these contributions"
        with_goods = [g for g in self.gifts if g.goods is not None]
        if with_goods:
            return " ".join(self._gift_goods_sentence(g) for g in with_goods) + (
                "" if self.kind == "gift" or len(with_goods) == len(self.gifts) else
                " No goods or services were provided in exchange for the other contributions.")
        if self.goods is None:
            return f"No goods or services were provided in exchange for {what}."
        return (f"In exchange for {what}, {self.organisation.name} provided "
                f"{self.goods.description}, with a good-faith estimated value of "
                f"{self.money(self.goods.value_minor, self.goods.currency)}. "
                "The amount deductible for federal income tax purposes "
                "is limited to the excess of the money (and the value of property) contributed "
                "over the value of the goods or services provided.")

    def _gift_goods_sentence(self, gift: LetterGift) -> str:
        goods = gift.goods
        which = ("this contribution" if self.kind == "gift" else
                 f"your contribution of {self.day(gift.received_on)}")
        sentence = (f"In exchange for {which}, {self.organisation.name} provided "
                    f"{goods.description}, with a good-faith estimated value of "
                    f"{self.money(goods.value_minor, goods.currency)}.")
        if gift.quid_pro_quo:
            # The disclosure Publication 1771 requires above the threshold.
            sentence += (" The amount of your contribution that is deductible for federal "
                         "income tax purposes is limited to the excess of the money "
                         "contributed over the value of the goods or services provided: "
                         f"{self.money(gift.deductible_minor, gift.currency)}.")
        return sentence

    def content(self) -> dict:
        return {
            "kind": self.kind,
            "organization": {"name": self.organisation.name, "ein": self.organisation.ein,
                             "address": self.organisation.address},
            "letter_date": self.letter_date.isoformat(),
            "locale": self.locale,
            "donor": {"id": self.donor_id, "name": self.donor_name,
                      "address": self.donor_address},
            "gift_id": self.gift_id,
            "year": self.year,
            "gifts": [
                {"gift_id": g.gift_id, "received_on": g.received_on.isoformat(), "kind": g.kind,
                 "amount": format_amount(g.amount_minor, g.currency)
                 if g.amount_minor is not None else None,
                 "currency": g.currency if g.amount_minor is not None else None,
                 "description": g.description,
                 "goods_or_services": None if g.goods is None else {
                     "description": g.goods.description,
                     "estimated_value": format_amount(g.goods.value_minor, g.currency)},
                 "deductible": format_amount(g.deductible_minor, g.currency)
                 if g.deductible_minor is not None else None}
                for g in self.gifts
            ],
            "totals": [{"currency": c, "amount": format_amount(m, c)} for c, m in self.totals],
            "deductible_totals": [{"currency": c, "amount": format_amount(m, c)}
                                  for c, m in self.deductible_totals],
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


def _sum_by_currency(pairs) -> list[tuple[str, int]]:
    sums: dict[str, int] = {}
    for currency, minor in pairs:
        if minor is not None:
            sums[currency] = sums.get(currency, 0) + minor
    return sorted(sums.items())


def gift_line(gift: LetterGift, letter: Letter) -> str:
    """One gift of an annual statement: date, amount and the deductible part."""
    when = letter.day(gift.received_on)
    if gift.amount_minor is None:
        return f"{when}: non-cash gift: {gift.description or 'as described'}"
    line = f"{when}: {letter.money(gift.amount_minor, gift.currency)}"
    if gift.goods is not None:
        line += f" (deductible: {letter.money(gift.deductible_minor, gift.currency)})"
    return line


def _addressed(lines: list[str], name: str, address: str | None) -> None:
    """The recipient's name and postal address, as on an envelope's window."""
    lines.append(name)
    if address:
        lines += [line for line in address.splitlines() if line.strip()]


def _letterhead(org: Organisation) -> list[str]:
    lines = [org.name]
    if org.address:
        lines += org.address.splitlines()
    if org.ein:
        lines.append(f"EIN {org.ein}")
    return lines


def letter_text(letter: Letter) -> str:
    """The letter as plain text: the e-mail's body, and what the HTML and PDF show. Blocks
    are separated by a blank line: the letterhead, the date, the donor's name and postal
    address, then the letter. Dates and amounts are in the organisation's locale."""
    org = letter.organisation
    lines = _letterhead(org)
    lines += ["", letter.day(letter.letter_date), ""]
    _addressed(lines, letter.donor_name, letter.donor_address)
    lines += ["", f"Dear {letter.donor_name},", ""]
    if letter.kind == "gift":
        gift = letter.gifts[0]
        if gift.amount_minor is None:
            lines.append(f"Thank you for your non-cash gift to {org.name}, received on "
                         f"{letter.day(gift.received_on)}: {gift.description or 'as described'}.")
        else:
            lines.append(f"Thank you for your gift to {org.name} of "
                         f"{letter.money(gift.amount_minor, gift.currency)}, "
                         f"received on {letter.day(gift.received_on)}.")
    else:
        lines.append(f"Thank you for your gifts to {org.name} in {letter.year}:")
        lines.append("")
        lines += [f"  {gift_line(g, letter)}" for g in letter.gifts]
        lines.append("")
        totals = "; ".join(letter.money(m, c) for c, m in letter.totals)
        lines.append(f"Total cash given in {letter.year}: {totals or 'none'}.")
        if any(g.goods is not None for g in letter.gifts):
            deductible = "; ".join(letter.money(m, c) for c, m in letter.deductible_totals)
            lines.append(f"Of which deductible: {deductible}.")
        if any(g.amount_minor is None for g in letter.gifts):
            lines.append("Non-cash gifts are described, not valued.")
    lines += ["", letter.goods_statement, "",
              "Please keep this letter for your tax records.", "", "With gratitude,", org.name]
    return "\n".join(lines)


@dataclass(frozen=True)
class TributeLetter:
    """The notice to the person a tribute gift's donor asked us to tell (a family member):
    who gave, in honour or memory of whom. It never states the amount."""

    organisation: Organisation
    letter_date: date
    gift_id: int
    kind: str  # "honour" | "memory"
    honoree_name: str
    recipient_name: str
    recipient_address: str | None
    #: The donor as the recipient may be told (an anonymous donor is not named).
    donor_name: str | None

    def text(self) -> str:
        org = self.organisation
        lines = _letterhead(org)
        lines += ["", letter_format.day(self.letter_date, org.locale), ""]
        _addressed(lines, self.recipient_name, self.recipient_address)
        who = self.donor_name or "A donor who wishes to remain anonymous"
        lines += ["", f"Dear {self.recipient_name},", "",
                  f"{who} has made a gift to {org.name} {KIND_WORDS[self.kind]} "
                  f"{self.honoree_name}, and asked us to let you know.", "",
                  "We are grateful for this gift and for the person it honours."
                  if self.kind == "honour" else
                  "We are grateful for this gift, and we are sorry for your loss.", "",
                  "With warm regards,", org.name]
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


def _letter_gift(gift: Gift, net_reporting_minor: int | None = None) -> LetterGift:
    """The gift as a letter states it. net_reporting_minor: its reporting amount net of
    refunds, for the quid-pro-quo threshold (default: the gift's, less what its own
    currency's refunds scale to)."""
    cash = gift.kind == "cash"
    net = gift.amount_minor - gift.refunded_minor
    goods = None
    if cash and gift.goods_description is not None:
        goods = Goods(gift.goods_description, gift.goods_value_minor, gift.currency)
    if net_reporting_minor is None:
        net_reporting_minor = (gift.reporting_amount_minor * net // gift.amount_minor
                               if gift.amount_minor else 0)
    return LetterGift(
        gift_id=gift.id, received_on=gift.received_on, kind=gift.kind,
        amount_minor=net if cash else None,
        currency=gift.currency, description=gift.description, goods=goods,
        quid_pro_quo=goods is not None
        and net_reporting_minor > quid_pro_quo_minor(gift.reporting_currency),
    )


def gift_letter(session: Session, gift_id: int, organisation: Organisation, letter_date: date,
                goods: Goods | None = None) -> Letter:
    """A gift's acknowledgement. goods: typed on the letter page for a gift recorded without
    any; a gift that records its own goods states those, and refuses others."""
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift", gift_id)
    if not needs_acknowledgement(session, gift):
        raise NotAllowed(
            f"gift {gift_id} needs no acknowledgement: only accepted gifts of "
            f"{format_amount(threshold_minor(gift.reporting_currency), gift.reporting_currency)} "
            f"{gift.reporting_currency} or more (net of refunds) get one")
    if goods is not None and gift.goods_description is not None:
        raise NotAllowed(f"gift {gift_id} records the goods or services it bought; the "
                         "letter states those (correct the gift to change them)")
    donor = session.get(Donor, gift.donor_id)
    return Letter(kind="gift", organisation=organisation, letter_date=letter_date,
                  donor_id=donor.id, donor_name=donor.name, donor_email=donor.email,
                  gifts=(_letter_gift(gift, net_reporting_minor(session, gift)),),
                  gift_id=gift.id, goods=goods, donor_address=donor.postal_address)


def _in_year(year: int) -> tuple:
    """Accepted gifts received in a calendar year, as an annual statement lists them."""
    return (Gift.status == "accepted", Gift.received_on >= date(year, 1, 1),
            Gift.received_on <= date(year, 12, 31))


def _year_gifts(year: int):
    return select(Gift).where(*_in_year(year))


def _kept(gifts) -> list[Gift]:
    """Leave out cash gifts refunded in full: nothing of them is left to acknowledge."""
    return [g for g in gifts if g.kind != "cash" or g.refunded_minor < g.amount_minor]


def _annual(donor: Donor, gifts: list[Gift], year: int, organisation: Organisation,
            letter_date: date, goods: Goods | None = None) -> Letter:
    return Letter(kind="annual", organisation=organisation, letter_date=letter_date,
                  donor_id=donor.id, donor_name=donor.name, donor_email=donor.email,
                  gifts=tuple(_letter_gift(g) for g in gifts), year=year, goods=goods,
                  donor_address=donor.postal_address)


def annual_letter(session: Session, donor_id: int, year: int, organisation: Organisation,
                  letter_date: date, goods: Goods | None = None) -> Letter:
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise NotFound("donor", donor_id)
    kept = _kept(session.execute(
        _year_gifts(year).where(Gift.donor_id == donor_id).order_by(Gift.received_on, Gift.id)
    ).scalars().all())
    if not kept:
        raise NotFound(f"accepted gift of donor {donor_id} in", year)
    return _annual(donor, kept, year, organisation, letter_date, goods)


#: progress(done, total): called as a batch goes, so a job can report it (app.jobs, later).
Progress = Callable[[int, int], None]


def count_year_end_donors(session: Session, year: int) -> int:
    """How many donors gave an accepted gift in the year (an upper bound of the statements:
    a donor whose gifts were all refunded in full gets none)."""
    return session.execute(select(func.count(func.distinct(Gift.donor_id)))
                           .where(*_in_year(year))).scalar_one()


def year_end_letters(session: Session, year: int, organisation: Organisation,
                     letter_date: date, progress: Progress | None = None,
                     chunk: int = 500) -> Iterator[Letter]:
    """Every donor's annual giving statement for a year, in donor order, one at a time
    (a long batch never holds them all). The gifts are read a chunk of donors at a time;
    progress(done, total) is called after each donor."""
    total = count_year_end_donors(session, year)
    done = 0
    after = 0
    while True:
        donors = session.execute(
            select(Donor).where(Donor.id.in_(
                select(Gift.donor_id).where(*_in_year(year), Gift.donor_id > after)))
            .order_by(Donor.id).limit(chunk)
        ).scalars().all()
        if not donors:
            break
        by_donor: dict[int, list[Gift]] = {d.id: [] for d in donors}
        gifts = session.execute(
            _year_gifts(year).where(Gift.donor_id.in_(list(by_donor)))
            .order_by(Gift.donor_id, Gift.received_on, Gift.id)).scalars().all()
        for gift in gifts:
            by_donor[gift.donor_id].append(gift)
        for donor in donors:
            kept = _kept(by_donor[donor.id])
            if kept:
                yield _annual(donor, kept, year, organisation, letter_date)
            done += 1
            if progress is not None:
                progress(done, total)
        after = donors[-1].id


def tribute_letter(session: Session, gift_id: int, organisation: Organisation,
                   letter_date: date) -> TributeLetter:
    """The notice of an accepted tribute gift to the person its donor asked us to tell."""
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift", gift_id)
    tribute = tribute_of(session, gift_id)
    if tribute is None or tribute.notify_name is None:
        raise NotAllowed(f"gift {gift_id} names nobody to notify of a tribute")
    if gift.status != "accepted":
        raise NotAllowed(f"gift {gift_id} is {gift.status}: only an accepted gift is announced")
    donor = session.get(Donor, gift.donor_id)
    return TributeLetter(
        organisation=organisation, letter_date=letter_date, gift_id=gift.id, kind=tribute.kind,
        honoree_name=tribute.honoree_name, recipient_name=tribute.notify_name,
        recipient_address=tribute.notify_address,
        donor_name=None if donor.anonymous else donor.name)


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
    # The goods stated: typed on the letter page, or a gift letter's own gift's.
    goods = letter.goods or (letter.gifts[0].goods if letter.kind == "gift" else None)
    with ledger_write(session):
        record = Acknowledgement(
            kind=letter.kind, donor_id=letter.donor_id, gift_id=letter.gift_id, year=letter.year,
            channel=channel, sent_to=sent_to, content=letter.canonical(),
            content_hash=letter.content_hash(),
            goods_description=goods.description if goods else None,
            goods_value_minor=goods.value_minor if goods else None,
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
