"""Keeping the daily funding totals in step with the ledger: the write half.

funding_day holds, per gift date, the gross totals of the gifts that count as funding
(accepted cash gifts: Gift.counts_as_funding) and what those gifts have had refunded so
far, whenever the refund was made; funding_mix_day what they credit to organisations.
A gift enters them when it comes to count (add_to_funding), leaves them when it stops
(remove_from_funding), and each refund of a gift in them is deducted (deduct_refund).
Every change is an upsert that adds to the stored figures, under the ledger lock.
app.ledger.windows reads them.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.ledger.windows import gift_refunded, refunded_lab, refunded_reporting
from models import Attribution, Donor, FundingDay, FundingMixDay, Gift
from models.parties import DONOR_CATEGORIES


def add_funding_day(session: Session, day: date, total_minor: int, lab_minor: int,
                    gift_count: int, refunded_minor: int = 0, refunded_lab_minor: int = 0) -> None:
    """Add (or with negative numbers remove) a gift's contribution to its day.

    One INSERT ... ON CONFLICT DO UPDATE that adds to the stored figures in the database,
    rather than read the row and write it back. Callers hold the ledger lock. Nothing in
    the app loads FundingDay rows as ORM objects to change them; every reader selects
    columns, so there is no stale object to keep in step.
    """
    connection = session.connection()  # a Core upsert of a Table: no ORM handling to add
    connection.execute(_adding_upsert(connection.dialect.name, FundingDay),
                       {"day": day, "total_minor": total_minor, "lab_minor": lab_minor,
                        "gift_count": gift_count, "refunded_minor": refunded_minor,
                        "refunded_lab_minor": refunded_lab_minor})


def add_funding_days(session: Session, days: list[dict]) -> None:
    """add_funding_day for many days at once (one executemany): dicts with its
    arguments as keys, at most one per day."""
    if days:
        session.execute(_adding_upsert(session.get_bind().dialect.name, FundingDay), days)


@cache
def _adding_upsert(dialect: str, model) -> object:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE adding every other column to the
    stored one: one statement that adds to a running total, never read and written back."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__
    keys = [c for c in table.columns if c.primary_key]
    added = [c.key for c in table.columns if not c.primary_key]
    stmt = insert(table).values(**{c.key: bindparam(c.key) for c in table.columns})
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: table.c[c] + stmt.excluded[c] for c in added})


def add_to_funding(session: Session, gift: Gift, credits: Credits | None = None) -> None:
    """Add a gift that now counts as funding (with its refunds so far) to its day, and what
    it credits to organisations to the funding mix. credits: its gift_credits(), if the
    caller has them (a gift whose attributions are not stored yet); else they are read."""
    if gift.kind == "cash":
        refunded, lab_refunded = gift_refunded(gift)
        add_funding_day(session, gift.received_on, gift.reporting_amount_minor, gift.lab_minor,
                        1, refunded, lab_refunded)
        _credit(session, gift, credits, 1)


def remove_from_funding(session: Session, gift: Gift) -> None:
    """Take a gift that no longer counts (and its refunds) off its day. Its lab_minor must
    still be the one it was counted with: change it only after this."""
    if gift.kind == "cash":
        refunded, lab_refunded = gift_refunded(gift)
        add_funding_day(session, gift.received_on, -gift.reporting_amount_minor, -gift.lab_minor,
                        -1, -refunded, -lab_refunded)
        _credit(session, gift, None, -1)


# --- the funding mix's credits to organisations (funding_mix_day) ----------------------------

#: Donor categories the funding mix credits apart: organisations (people are "individual").
ORGANISATION_CATEGORIES = tuple(c for c in DONOR_CATEGORIES if c != "individual")

#: (category, fraction in millionths) of a gift's attributions to organisation donors.
Credits = list[tuple[str, int]]


def credits_of(shares, categories: dict[int, str | None]) -> Credits:
    """A new gift's credits from its shares (donor_id, fraction_ppm) and the categories of
    the donors they name."""
    return [(categories[s.donor_id], s.fraction_ppm) for s in shares
            if categories[s.donor_id] in ORGANISATION_CATEGORIES]


def gift_credits(session: Session, gift_id: int) -> Credits:
    """A stored gift's credits, from its attributions and its donors' categories now."""
    return [tuple(row) for row in session.execute(
        select(Donor.category, Attribution.fraction_ppm)
        .join(Donor, Donor.id == Attribution.donor_id)
        .where(Attribution.gift_id == gift_id,
               Donor.category.in_(ORGANISATION_CATEGORIES)))]


def credited_days(gifts: list[tuple[date, int, Credits]], sign: int = 1) -> list[dict]:
    """funding_mix_day additions for gifts (day, reporting amount, credits), one per day and
    category."""
    sums: dict[tuple[date, str], int] = {}
    for day, amount, credits in gifts:
        for category, ppm in credits:
            sums[(day, category)] = sums.get((day, category), 0) + sign * amount * ppm
    return [{"day": day, "category": category, "credited_ppm": value}
            for (day, category), value in sums.items()]


def add_mix_days(session: Session, days: list[dict]) -> None:
    """Add to funding_mix_day (credited_days' rows): one upsert, executemany for several."""
    if days:
        session.execute(_adding_upsert(session.get_bind().dialect.name, FundingMixDay), days)


def _credit(session: Session, gift: Gift, credits: Credits | None, sign: int) -> None:
    if credits is None:
        credits = gift_credits(session, gift.id)
    add_mix_days(session, credited_days([(gift.received_on, gift.reporting_amount_minor,
                                          credits)], sign))


def recomputed_mix_days(session: Session) -> list[dict]:
    """funding_mix_day as it should be, recomputed from every counted gift's attributions and
    its donors' categories now (what add_to_funding, remove_from_funding and move_credits
    keep)."""
    return [{"day": day, "category": category, "credited_ppm": int(credited)}
            for day, category, credited in session.execute(
                select(Gift.received_on, Donor.category,
                       func.sum(Gift.reporting_amount_minor * Attribution.fraction_ppm))
                .select_from(Gift)
                .join(Attribution, Attribution.gift_id == Gift.id)
                .join(Donor, Donor.id == Attribution.donor_id)
                .where(Gift.status == "accepted", Gift.kind == "cash",
                       Donor.category.in_(ORGANISATION_CATEGORIES))
                .group_by(Gift.received_on, Donor.category))]


def move_credits(session: Session, donor_id: int, old: str | None, new: str | None) -> None:
    """A donor's category changed from old to new: move what its counted gifts' attributions
    credit it from the old category's days to the new one's (either may be no column)."""
    if old == new or (old not in ORGANISATION_CATEGORIES and new not in ORGANISATION_CATEGORIES):
        return
    per_day = session.execute(
        select(Gift.received_on, func.sum(Gift.reporting_amount_minor * Attribution.fraction_ppm))
        .select_from(Attribution).join(Gift, Gift.id == Attribution.gift_id)
        .where(Attribution.donor_id == donor_id, Gift.status == "accepted", Gift.kind == "cash")
        .group_by(Gift.received_on)
    ).all()
    moves = []
    for day, credited in per_day:
        if old in ORGANISATION_CATEGORIES:
            moves.append({"day": day, "category": old, "credited_ppm": -int(credited)})
        if new in ORGANISATION_CATEGORIES:
            moves.append({"day": day, "category": new, "credited_ppm": int(credited)})
    add_mix_days(session, moves)


def deduct_refund(session: Session, gift: Gift, refunded_before: int) -> None:
    """Deduct a new refund of a gift that counts as funding from its day (a reversal, a
    negative refund, adds it back). gift.refunded_minor already includes it; refunded_before
    (gift currency) is what was refunded before it."""
    if gift.counts_as_funding:
        before = refunded_reporting(gift, refunded_before)
        after = refunded_reporting(gift, gift.refunded_minor)
        lab, total = gift.lab_minor, gift.reporting_amount_minor
        add_funding_day(session, gift.received_on, 0, 0, 0, after - before,
                        refunded_lab(after, lab, total) - refunded_lab(before, lab, total))
