"""Window sums of accepted funding, read from daily totals and refunds.

A window ending on E covers the days E - (window_days - 1) .. E. A gift counts in it
if its date is in that range; each of its refunds dated on or before E reduces it.
Reads are bounded by the window length and the refunds inside it, never the ledger:

- one range read of funding_day (at most one row per day), then prefix sums;
- one range read of the refunds by gift date (index ix_refund_gift_received_on), then
  the refunded gifts by primary key. Driving the read from the refund index keeps it
  bounded: with a join, SQLite's planner (which has no statistics unless ANALYZE ran)
  preferred to walk every accepted gift (ix_gift_status_received_on) and probe refunds,
  which grows with the whole ledger.

Many window ends (a back-dated gift's later decision points, a day-by-day series) are
answered in one sweep over the ends in date order, so the cost is
O(days + refunds x log(refunds) + ends), not O(refunds x ends).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from sqlalchemy import BigInteger, bindparam, case, func, literal, null, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models import FundingDay, Gift, Refund
from policies import FundingFacts, WindowTotals

#: Gift ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
_ID_CHUNK = 5000


def window_start(end: date, window_days: int) -> date:
    return end - timedelta(days=window_days - 1)


def add_funding(session: Session, day: date, total_minor: int, lab_minor: int, count: int) -> None:
    """Add (or with negative numbers remove) a gift's contribution to its day.

    One INSERT ... ON CONFLICT DO UPDATE that adds to the stored figures in the database,
    rather than read the row and write it back. Callers hold the ledger lock. Nothing in
    the app loads FundingDay rows as ORM objects to change them; every reader selects
    columns, so there is no stale object to keep in step.
    """
    session.execute(_funding_upsert(session.get_bind().dialect.name),
                    {"day": day, "total_minor": total_minor, "lab_minor": lab_minor,
                     "gift_count": count})


@cache
def _funding_upsert(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = FundingDay.__table__
    stmt = insert(table).values(day=bindparam("day"), total_minor=bindparam("total_minor"),
                                lab_minor=bindparam("lab_minor"), gift_count=bindparam("gift_count"))
    return stmt.on_conflict_do_update(
        index_elements=[table.c.day],
        set_={"total_minor": table.c.total_minor + stmt.excluded.total_minor,
              "lab_minor": table.c.lab_minor + stmt.excluded.lab_minor,
              "gift_count": table.c.gift_count + stmt.excluded.gift_count},
    )


def count_gift(session: Session, gift: Gift) -> None:
    if gift.kind == "cash":
        add_funding(session, gift.received_on, gift.reporting_amount_minor, gift.lab_minor, 1)


def uncount_gift(session: Session, gift: Gift) -> None:
    if gift.kind == "cash":
        add_funding(session, gift.received_on, -gift.reporting_amount_minor, -gift.lab_minor, -1)


@dataclass(frozen=True)
class _RefundRow:
    gift_id: int
    gift_day: date
    refunded_on: date
    total: int
    #: The step this refund makes in the gift's refunded lab money (see _with_lab_steps).
    lab: int = 0


def _refunds(session: Session, first_day: date, last_day: date) -> list[_RefundRow]:
    """Refunds made by last_day of accepted cash gifts dated first_day..last_day."""
    rows = session.execute(
        select(Refund.gift_id, Refund.gift_received_on, Refund.refunded_on,
               Refund.reporting_amount_minor)
        .where(Refund.gift_received_on >= first_day, Refund.gift_received_on <= last_day,
               Refund.refunded_on <= last_day)
    ).all()
    if not rows:
        return []
    ids = sorted({row[0] for row in rows})
    split: dict[int, tuple[int, int]] = {}
    for i in range(0, len(ids), _ID_CHUNK):
        # By primary key only; status and kind are checked here, so no planner can prefer
        # an index on them.
        for gift_id, lab, total, status, kind in session.execute(
            select(Gift.id, Gift.lab_minor, Gift.reporting_amount_minor, Gift.status, Gift.kind)
            .where(Gift.id.in_(ids[i:i + _ID_CHUNK]))
        ):
            if status == "accepted" and kind == "cash":
                split[gift_id] = (lab, total)
    counted = [row for row in rows if row[0] in split]
    return _with_lab_steps(counted, split)


def _refunded_lab(refunded: int, gift_lab: int, gift_total: int) -> int:
    """The lab part of what a gift has had refunded, pro rata of the whole refunded sum and
    rounded down, so the share is never understated and a full refund takes back exactly
    the gift's lab part (rounding each refund alone would leave cents of lab money behind)."""
    return refunded * gift_lab // gift_total if gift_total else 0


def _with_lab_steps(rows, split: dict[int, tuple[int, int]]) -> list[_RefundRow]:
    """Each refund with the step it makes in its gift's refunded lab money.

    A window counts a gift's refunds made on or before its end: always the earliest ones,
    in refund-date order. So the lab money a window takes back for a gift,
    _refunded_lab(sum of those refunds), is the sum of the steps
    _refunded_lab(cumulative after refund k) - _refunded_lab(cumulative before it) over
    them, and the steps can be added window by window like amounts.
    """
    result = []
    refunded: dict[int, int] = {}
    for gift_id, gift_day, refunded_on, amount in sorted(rows, key=lambda r: (r[0], r[2])):
        lab, total = split[gift_id]
        before = refunded.get(gift_id, 0)
        refunded[gift_id] = before + amount
        step = _refunded_lab(before + amount, lab, total) - _refunded_lab(before, lab, total)
        result.append(_RefundRow(gift_id, gift_day, refunded_on, amount, step))
    return result


def _day_rows(session: Session, first_day: date, last_day: date) -> list[tuple[date, int, int, int]]:
    return [tuple(row) for row in session.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor, FundingDay.gift_count)
        .where(FundingDay.day >= first_day, FundingDay.day <= last_day)
        .order_by(FundingDay.day)
    )]


def _totals(days: list[tuple[date, int, int, int]], refunds: list[_RefundRow],
            ends: list[date], window_days: int) -> list[WindowTotals]:
    """Window totals for each end (in the order given) from the day rows and refunds,
    which must cover window_start(min(ends)) .. max(ends)."""
    keys = [row[0] for row in days]
    total_prefix = [0]
    lab_prefix = [0]
    for _, total, lab, _count in days:
        total_prefix.append(total_prefix[-1] + total)
        lab_prefix.append(lab_prefix[-1] + lab)

    # Refunds counted in the window ending on E: refunded_on <= E and gift_day >= its start
    # (gift_day <= E follows, as no refund predates its gift). As E grows, refunds enter in
    # refunded_on order and leave in gift_day order: two pointers over two sortings.
    by_refund_day = sorted(range(len(refunds)), key=lambda i: refunds[i].refunded_on)
    by_gift_day = sorted(range(len(refunds)), key=lambda i: refunds[i].gift_day)
    state = [0] * len(refunds)  # 0 not yet made, 1 counted, 2 gift left the window
    entered = left = 0
    refunded_total = refunded_lab = 0
    answers: dict[date, WindowTotals] = {}
    for end in sorted(set(ends)):
        start = window_start(end, window_days)
        while left < len(by_gift_day) and refunds[by_gift_day[left]].gift_day < start:
            i = by_gift_day[left]
            if state[i] == 1:
                refunded_total -= refunds[i].total
                refunded_lab -= refunds[i].lab
            state[i] = 2
            left += 1
        while entered < len(by_refund_day) and refunds[by_refund_day[entered]].refunded_on <= end:
            i = by_refund_day[entered]
            if state[i] == 0:
                state[i] = 1
                refunded_total += refunds[i].total
                refunded_lab += refunds[i].lab
            entered += 1
        lo = bisect.bisect_left(keys, start)
        hi = bisect.bisect_right(keys, end)
        answers[end] = WindowTotals(
            end=end,
            total_minor=total_prefix[hi] - total_prefix[lo] - refunded_total,
            lab_minor=lab_prefix[hi] - lab_prefix[lo] - refunded_lab,
        )
    return [answers[end] for end in ends]


# --- one window: sums computed by the database ---------------------------------------------
# The statements are built once; only their parameters change.

_DAY_SUMS = (
    select(func.coalesce(func.sum(FundingDay.total_minor), 0),
           func.coalesce(func.sum(FundingDay.lab_minor), 0))
    .where(FundingDay.day >= bindparam("first"), FundingDay.day <= bindparam("last"))
)

#: How a refund's gift counts: "x" not at all (not accepted cash), "n" no lab money,
#: "p" all lab money, "m" partly lab money. A correlated lookup of the gift by primary key,
#: so the read is driven by the refund index whatever the planner knows.
_REFUND_CLASS = (
    select(case((or_(Gift.status != "accepted", Gift.kind != "cash"), "x"),
                (Gift.lab_minor == 0, "n"),
                (Gift.lab_minor == Gift.reporting_amount_minor, "p"),
                else_="m"))
    .where(Gift.id == Refund.gift_id)
    .scalar_subquery()
)
_REFUNDS_IN_WINDOW = (
    select(Refund.gift_id.label("gift_id"), Refund.reporting_amount_minor.label("amount"),
           _REFUND_CLASS.label("class"))
    .where(Refund.gift_received_on >= bindparam("first"),
           Refund.gift_received_on <= bindparam("last"),
           Refund.refunded_on <= bindparam("last"))
    .subquery()
)
_REFUND_SUMS = (
    select(_REFUNDS_IN_WINDOW.c["class"], func.sum(_REFUNDS_IN_WINDOW.c.amount))
    .group_by(_REFUNDS_IN_WINDOW.c["class"])
)
_PARTLY_LAB_REFUNDS = (
    select(_REFUNDS_IN_WINDOW.c.gift_id, func.sum(_REFUNDS_IN_WINDOW.c.amount))
    .where(_REFUNDS_IN_WINDOW.c["class"] == "m")
    .group_by(_REFUNDS_IN_WINDOW.c.gift_id)
)


#: The later decision points of a day, then (day NULL) the sums of the window ending on it.
_LATER_AND_SUMS = union_all(
    select(FundingDay.day, literal(0, BigInteger), literal(0, BigInteger))
    .where(FundingDay.day > bindparam("day"), FundingDay.day <= bindparam("later"),
           FundingDay.gift_count > 0),
    select(null(), func.coalesce(func.sum(FundingDay.total_minor), 0),
           func.coalesce(func.sum(FundingDay.lab_minor), 0))
    .where(FundingDay.day >= bindparam("first"), FundingDay.day <= bindparam("day")),
)


def _one_window(session: Session, end: date, window_days: int,
                day_sums: tuple[int, int] | None = None) -> WindowTotals:
    """The window ending on `end`, as _totals computes it, with the summing done by the
    database: two one-row answers however many gifts and refunds the window holds.

    A gift's refunded lab money is _refunded_lab(its refunds in the window): nothing for a
    gift with no lab money, all of it for an all-lab gift, and for a gift that is partly
    lab money (a joint gift, a DAF grant) the rounded-down share, computed here per gift.
    """
    params = {"first": window_start(end, window_days), "last": end}
    total, lab = day_sums if day_sums is not None else session.execute(_DAY_SUMS, params).one()
    refunded = dict(session.execute(_REFUND_SUMS, params).all())
    total -= sum(amount for klass, amount in refunded.items() if klass != "x")
    lab -= refunded.get("p", 0)
    if refunded.get("m"):
        partly = dict(session.execute(_PARTLY_LAB_REFUNDS, params).all())
        for gift_id, lab_minor, gift_total in session.execute(
            select(Gift.id, Gift.lab_minor, Gift.reporting_amount_minor)
            .where(Gift.id.in_(sorted(partly)))
        ):
            lab -= _refunded_lab(partly[gift_id], lab_minor, gift_total)
    return WindowTotals(end=end, total_minor=int(total), lab_minor=int(lab))


def window_totals(session: Session, ends: list[date], window_days: int) -> list[WindowTotals]:
    """Totals for each window ending on a date in `ends`, in the order given."""
    if not ends:
        return []
    if len(set(ends)) == 1:
        return [_one_window(session, ends[0], window_days)] * len(ends)
    first_day = window_start(min(ends), window_days)
    last_day = max(ends)
    return _totals(_day_rows(session, first_day, last_day), _refunds(session, first_day, last_day),
                   ends, window_days)


_LATER_POINTS = (
    select(FundingDay.day)
    .where(FundingDay.day > bindparam("day"), FundingDay.day <= bindparam("last"),
           FundingDay.gift_count > 0)
    .order_by(FundingDay.day)
)


def later_decision_points(session: Session, day: date, window_days: int) -> list[date]:
    """Later dates with accepted gifts whose windows still contain `day`."""
    last = day + timedelta(days=window_days - 1)
    return list(session.execute(_LATER_POINTS, {"day": day, "last": last}).scalars())


def funding_facts(session: Session, day: date, window_days: int) -> FundingFacts:
    """The window ending on `day`, then every later decision point it affects.

    A gift dated today (the usual case) has no later decision point: its one window is
    summed by the database. Otherwise one read of the daily totals and one of the refunds
    cover every window, and _totals sweeps them.
    """
    later = day + timedelta(days=window_days - 1)
    rows = session.execute(_LATER_AND_SUMS, {"day": day, "later": later,
                                              "first": window_start(day, window_days)}).all()
    ends = [day, *sorted(d for d, _total, _lab in rows if d is not None)]
    if len(ends) == 1:  # no later decision point: one window, summed by the database
        sums = next((total, lab) for d, total, lab in rows if d is None)
        return FundingFacts((_one_window(session, day, window_days, sums),))
    return FundingFacts(tuple(window_totals(session, ends, window_days)))
