"""Trailing-window sums of accepted funding, read from the daily totals and the refunds.

A window ending on E covers the days E - (window_days - 1) .. E. A gift counts in it
if its date is in that range; each of its refunds dated on or before E reduces it.
app.ledger.funding keeps the daily totals (funding_day) in step with the ledger; this
module only reads them, and holds the arithmetic both sides share (refunded_reporting,
refunded_lab).

The lab part of refunds. A gift's refunded lab money is its refunded sum x lab / total,
rounded down (refunded_lab, the one place it is rounded), so the share is never
understated and a full refund takes back exactly the gift's lab part. Each refund takes
back the step it makes in that figure, so steps add up window by window like amounts.

One window, or a few ends (window_totals, funding_facts). funding_day holds, per gift
date, the counted (accepted cash) gifts' gross totals and what those gifts have had
refunded so far, whenever the refund was made. So

    window(E) = sum over its days of (gross - refunded) + the refunds made after E

and the reads are bounded by the window's days and the refunds dated after its end, never
by the ledger: a window ending today (the usual decision, the summary) reads no refund
rows at all, since no refund is dated later. The refunds made after E are found through
ix_refund_refunded_on alone (not the gift-date index, which would walk every refund of the
window), then their gifts by primary key. Many ends (a back-dated gift's later decision
points) are answered in one sweep over the ends in date order, so the cost is
O(days + late refunds x log(late refunds) + ends).

Every day of a range (daily_windows: the dashboard's series, the disclosure's share).
One read of the gross daily totals from the first window's start to the range's end, one
read of the refunds of gifts dated in that span, then prefix sums: a window ending on E
is prefix[E] - prefix[E - window_days]. A refund of a gift dated G, made on R (R >= G),
counts in the windows ending on E with R <= E <= G + window_days - 1 (the window must
still contain G): it adds its amount (and its lab step) to a difference array at R and
takes it back at G + window_days; a running sum gives what refunds take off each window.
Cost: O(days in the range + window_days + refunds), whatever the number of gifts.

In memory (FundingMemory): funding_facts() for one writer that records many gifts under
one ledger lock (GiftIntake).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import BigInteger, bindparam, func, literal, null, select, union_all
from sqlmodel import Session

from models import FundingDay, Gift, Refund
from policies import FundingFacts, WindowTotals

#: Gift ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
_ID_CHUNK = 5000


def window_start(end: date, window_days: int) -> date:
    return end - timedelta(days=window_days - 1)


# --- what a refund takes off -----------------------------------------------------------------

def refunded_reporting(gift: Gift, refunded_minor: int) -> int:
    """The reporting-currency part of refunded_minor (gift currency) of a gift: pro rata of
    its stored converted amount, rounded down, and exactly that amount once fully refunded.
    Refunds are converted cumulatively with it, so a gift's refunds add up to this."""
    if refunded_minor == gift.amount_minor:
        return gift.reporting_amount_minor
    return gift.reporting_amount_minor * refunded_minor // gift.amount_minor


def refunded_lab(refunded: int, gift_lab: int, gift_total: int) -> int:
    """The lab part of what a gift has had refunded, pro rata of the whole refunded sum and
    rounded down, so the share is never understated and a full refund takes back exactly
    the gift's lab part (rounding each refund alone would leave cents of lab money behind)."""
    return refunded * gift_lab // gift_total if gift_total else 0


def gift_refunded(gift: Gift) -> tuple[int, int]:
    """What a gift has had refunded so far: reporting amount and its lab part."""
    refunded = refunded_reporting(gift, gift.refunded_minor)
    return refunded, refunded_lab(refunded, gift.lab_minor, gift.reporting_amount_minor)


# --- a few windows, from the daily totals and the refunds made after them ----------------------

@dataclass(frozen=True)
class _LateRefund:
    """A refund of a counted gift made after some date: what adding it back gives."""

    gift_day: date
    refunded_on: date
    total: int
    #: Its step in the gift's refunded lab money (see _late_refunds).
    lab: int


#: Refunds made after a date, by ix_refund_refunded_on only (see the module docstring).
_REFUNDS_AFTER = (
    select(Refund.gift_id, Refund.gift_received_on, Refund.refunded_on,
           Refund.reporting_amount_minor)
    .where(Refund.refunded_on > bindparam("after"))
)

#: Whether a gift counts, and what the lab-part arithmetic needs: the sum of all its refunds.
_REFUNDED_GIFTS = (
    select(Gift.id, Gift.status, Gift.kind, Gift.lab_minor, Gift.reporting_amount_minor,
           select(func.coalesce(func.sum(Refund.reporting_amount_minor), 0))
           .where(Refund.gift_id == Gift.id).scalar_subquery())
    .where(Gift.id.in_(bindparam("ids", expanding=True)))
)


def _late_refunds(session: Session, after: date, first_gift_day: date) -> list[_LateRefund]:
    """The refunds made after `after` of counted gifts dated on or after first_gift_day.

    Steps: take a gift's late refunds newest first. Adding back those made after E (for any
    E >= after, they are a run of the newest) must add back
    refunded_lab(all) - refunded_lab(all - their sum); each refund's step is its own
    difference in that sequence, so the run's steps add up to exactly that.
    """
    rows = [row for row in session.execute(_REFUNDS_AFTER, {"after": after})
            if row[1] >= first_gift_day]
    if not rows:
        return []
    ids = sorted({row[0] for row in rows})
    gifts: dict[int, tuple[int, int, int]] = {}
    for i in range(0, len(ids), _ID_CHUNK):
        for gift_id, status, kind, lab, total, refunded in session.execute(
                _REFUNDED_GIFTS, {"ids": ids[i:i + _ID_CHUNK]}):
            if status == "accepted" and kind == "cash":
                gifts[gift_id] = (lab, total, int(refunded))
    result = []
    remaining: dict[int, int] = {}  # per gift: refunded minus the later refunds seen so far
    for gift_id, gift_day, refunded_on, amount in sorted(
            (row for row in rows if row[0] in gifts), key=lambda r: (r[0], r[2]), reverse=True):
        lab, total, refunded = gifts[gift_id]
        before = remaining.get(gift_id, refunded)
        remaining[gift_id] = before - amount
        step = refunded_lab(before, lab, total) - refunded_lab(before - amount, lab, total)
        result.append(_LateRefund(gift_day, refunded_on, amount, step))
    return result


def _day_rows(session: Session, first_day: date, last_day: date) -> list[tuple[date, int, int]]:
    """(day, funding net of its gifts' refunds, lab part net of theirs), in date order."""
    return [tuple(row) for row in session.execute(
        select(FundingDay.day, FundingDay.total_minor - FundingDay.refunded_minor,
               FundingDay.lab_minor - FundingDay.refunded_lab_minor)
        .where(FundingDay.day >= first_day, FundingDay.day <= last_day)
        .order_by(FundingDay.day)
    )]


def _totals(days: list[tuple[date, int, int]], late: list[_LateRefund],
            ends: list[date], window_days: int) -> list[WindowTotals]:
    """Window totals for each end (in the order given) from the net day rows, which must
    cover window_start(min(ends)) .. max(ends), and the refunds made after min(ends)."""
    keys = [row[0] for row in days]
    total_prefix = [0]
    lab_prefix = [0]
    for _, total, lab in days:
        total_prefix.append(total_prefix[-1] + total)
        lab_prefix.append(lab_prefix[-1] + lab)

    # Added back in the window ending on E: refunds with gift_day in [start, E] made after
    # E. As E grows, a refund enters when E reaches its gift's date and leaves when E
    # reaches its own date or the window's start passes its gift's date: two pointers over
    # the gift dates and one over the refund dates.
    by_gift_day = sorted(range(len(late)), key=lambda i: late[i].gift_day)
    by_refund_day = sorted(range(len(late)), key=lambda i: late[i].refunded_on)
    state = [0] * len(late)  # 0 not yet in, 1 added back, 2 gone
    entered = made = aged = 0
    back_total = back_lab = 0

    def leave(i: int) -> None:
        nonlocal back_total, back_lab
        if state[i] == 1:
            back_total -= late[i].total
            back_lab -= late[i].lab
        state[i] = 2

    answers: dict[date, WindowTotals] = {}
    for end in sorted(set(ends)):
        start = window_start(end, window_days)
        while entered < len(late) and late[by_gift_day[entered]].gift_day <= end:
            i = by_gift_day[entered]
            if state[i] == 0:
                state[i] = 1
                back_total += late[i].total
                back_lab += late[i].lab
            entered += 1
        while made < len(late) and late[by_refund_day[made]].refunded_on <= end:
            leave(by_refund_day[made])
            made += 1
        while aged < len(late) and late[by_gift_day[aged]].gift_day < start:
            leave(by_gift_day[aged])
            aged += 1
        lo = bisect.bisect_left(keys, start)
        hi = bisect.bisect_right(keys, end)
        answers[end] = WindowTotals(
            end=end,
            total_minor=total_prefix[hi] - total_prefix[lo] + back_total,
            lab_minor=lab_prefix[hi] - lab_prefix[lo] + back_lab,
        )
    return [answers[end] for end in ends]


#: One statement for a decision's whole funding read in the usual case: the later decision
#: points of a day ("p", day), the net sums of the window ending on it ("s", total, lab),
#: how many refunds are dated after it ("r", count: by ix_refund_refunded_on alone;
#: nearly always 0 for today, and then no refund rows need reading), and, only when there
#: is a later decision point (a back-dated gift), the net day rows every window needs
#: ("d", day, total, lab, from the first window's start to the last possible end), which
#: were a statement of their own.
_LATER_AND_SUMS = union_all(
    select(literal("p"), FundingDay.day, literal(0, BigInteger), literal(0, BigInteger))
    .where(FundingDay.day > bindparam("day"), FundingDay.day <= bindparam("later"),
           FundingDay.gift_count > 0),
    select(literal("s"), null(),
           func.coalesce(func.sum(FundingDay.total_minor - FundingDay.refunded_minor), 0),
           func.coalesce(func.sum(FundingDay.lab_minor - FundingDay.refunded_lab_minor), 0))
    .where(FundingDay.day >= bindparam("first"), FundingDay.day <= bindparam("day")),
    select(literal("r"), null(), func.count(), literal(0, BigInteger))
    .select_from(Refund).where(Refund.refunded_on > bindparam("day")),
    select(literal("d"), FundingDay.day, FundingDay.total_minor - FundingDay.refunded_minor,
           FundingDay.lab_minor - FundingDay.refunded_lab_minor)
    .where(FundingDay.day >= bindparam("first"), FundingDay.day <= bindparam("later"),
           select(FundingDay.day)
           .where(FundingDay.day > bindparam("day"), FundingDay.day <= bindparam("later"),
                  FundingDay.gift_count > 0).exists()),
)

_NET_SUMS = (
    select(func.coalesce(func.sum(FundingDay.total_minor - FundingDay.refunded_minor), 0),
           func.coalesce(func.sum(FundingDay.lab_minor - FundingDay.refunded_lab_minor), 0))
    .where(FundingDay.day >= bindparam("first"), FundingDay.day <= bindparam("last"))
)


def _one_window(session: Session, end: date, window_days: int,
                net_sums: tuple[int, int] | None = None,
                refunds_after: bool = True) -> WindowTotals:
    """The window ending on `end`: its net day sums, summed by the database, plus the
    refunds made after it of gifts in it (none for a window ending today). A caller that
    has the sums, and knows no refund is dated after `end`, saves both reads."""
    first = window_start(end, window_days)
    if net_sums is None:
        net_sums = session.execute(_NET_SUMS, {"first": first, "last": end}).one()
    total, lab = (int(x) for x in net_sums)
    late = _late_refunds(session, end, first) if refunds_after else []
    for refund in late:
        if refund.gift_day <= end:
            total += refund.total
            lab += refund.lab
    return WindowTotals(end=end, total_minor=total, lab_minor=lab)


def window_totals(session: Session, ends: list[date], window_days: int) -> list[WindowTotals]:
    """Totals for each window ending on a date in `ends`, in the order given."""
    if not ends:
        return []
    if len(set(ends)) == 1:
        return [_one_window(session, ends[0], window_days)] * len(ends)
    first_day = window_start(min(ends), window_days)
    return _totals(_day_rows(session, first_day, max(ends)),
                   _late_refunds(session, min(ends), first_day), ends, window_days)


def funding_facts(session: Session, day: date, window_days: int) -> FundingFacts:
    """The window ending on `day`, then every later decision point it affects.

    A gift dated today (the usual case) has no later decision point: its one window is
    summed by the database. Otherwise the same statement brought the daily totals every
    window needs; the refunds made since are read only if there are any, and _totals sweeps
    them. Either way one statement when no refund is dated after the gift.
    """
    later = day + timedelta(days=window_days - 1)
    first = window_start(day, window_days)
    rows = session.execute(_LATER_AND_SUMS, {"day": day, "later": later,
                                              "first": first}).all()
    ends = [day, *sorted(d for kind, d, _a, _b in rows if kind == "p")]
    late = next(count for kind, _d, count, _b in rows if kind == "r")
    if len(ends) == 1:  # no later decision point: one window, summed by the database
        sums = next((total, lab) for kind, _d, total, lab in rows if kind == "s")
        return FundingFacts((_one_window(session, day, window_days, sums, late > 0),))
    days = sorted((d, int(total), int(lab)) for kind, d, total, lab in rows if kind == "d")
    refunds = _late_refunds(session, day, first) if late > 0 else []
    return FundingFacts(tuple(_totals(days, refunds, ends, window_days)))


# --- windows in memory, for a batch writer --------------------------------------------------

class _DaySums:
    """Net day sums (funding, lab part) by date, with range sums in O(log days): a Fenwick
    tree over date ordinals, kept in dicts, so it holds only the nodes of dates with money
    (about 22 per date) whatever the dates are (a gift mistyped as the year 9000 costs
    one date's nodes, not a slot for every day up to it)."""

    #: Above date.max.toordinal() (3,652,059): every date has a slot.
    SIZE = 1 << 22

    def __init__(self) -> None:
        self._total: dict[int, int] = {}
        self._lab: dict[int, int] = {}

    def add(self, day: date, total: int, lab: int) -> None:
        i = day.toordinal()
        totals, labs = self._total, self._lab
        while i <= self.SIZE:
            totals[i] = totals.get(i, 0) + total
            labs[i] = labs.get(i, 0) + lab
            i += i & -i

    def _prefix(self, i: int) -> tuple[int, int]:
        """Sums of the dates with ordinals 1..i."""
        total = lab = 0
        totals, labs = self._total, self._lab
        while i > 0:
            total += totals.get(i, 0)
            lab += labs.get(i, 0)
            i -= i & -i
        return total, lab

    def between(self, first: date, last: date) -> tuple[int, int]:
        high_total, high_lab = self._prefix(last.toordinal())
        low_total, low_lab = self._prefix(first.toordinal() - 1)
        return high_total - low_total, high_lab - low_lab


class FundingMemory:
    """funding_facts() answered from memory, for one writer that records many gifts under
    one ledger lock (GiftIntake, inside ledger_batch).

    It reads once what funding_facts() reads per gift: the daily totals from
    window_start(first_day) on, and the refunds made after first_day (with their lab-part
    steps, as _late_refunds computes them). Then the writer tells it of every gift it
    adds to the funding (add_gift), before the next gift is screened. Under the lock nothing else
    changes the totals, and gifts add no refunds, so for any gift dated on or after
    first_day, facts() equals what funding_facts() would read from the database at that
    moment: the same ends (the day, then the later days that hold counted gifts) and the
    same sums (net day sums + refunds made after the end). tests/ledger/test_intake.py checks
    the two against each other.
    """

    def __init__(self, session: Session, first_day: date, window_days: int):
        self.first_day = first_day
        self.window_days = window_days
        start = window_start(first_day, window_days)
        self._sums = _DaySums()
        self._counts: dict[date, int] = {}
        for day, total, lab, count in session.execute(
            select(FundingDay.day, FundingDay.total_minor - FundingDay.refunded_minor,
                   FundingDay.lab_minor - FundingDay.refunded_lab_minor, FundingDay.gift_count)
            .where(FundingDay.day >= start)
        ):
            self._sums.add(day, int(total), int(lab))
            self._counts[day] = int(count)
        #: Days holding counted gifts, in order: the decision points.
        self._points = sorted(day for day, count in self._counts.items() if count > 0)
        self._late = sorted(_late_refunds(session, first_day, start), key=lambda r: r.gift_day)
        self._late_days = [refund.gift_day for refund in self._late]
        self._added_back: dict[date, tuple[int, int]] = {}

    def add_gift(self, gift: Gift) -> None:
        """The gift now counts as funding (funding.add_to_funding has been or will be
        written for it)."""
        if gift.kind != "cash":
            return
        refunded, lab_refunded = gift_refunded(gift)
        day = gift.received_on
        self._sums.add(day, gift.reporting_amount_minor - refunded, gift.lab_minor - lab_refunded)
        before = self._counts.get(day, 0)
        self._counts[day] = before + 1
        if before == 0:
            bisect.insort(self._points, day)

    def _back(self, end: date) -> tuple[int, int]:
        """The refunds made after `end` of counted gifts in its window (fixed while the
        lock is held: the writer adds no refunds)."""
        if end not in self._added_back:
            start = window_start(end, self.window_days)
            total = lab = 0
            lo = bisect.bisect_left(self._late_days, start)
            hi = bisect.bisect_right(self._late_days, end)
            for refund in self._late[lo:hi]:
                if refund.refunded_on > end:
                    total += refund.total
                    lab += refund.lab
            self._added_back[end] = (total, lab)
        return self._added_back[end]

    def _window(self, end: date) -> WindowTotals:
        total, lab = self._sums.between(window_start(end, self.window_days), end)
        back_total, back_lab = self._back(end)
        return WindowTotals(end=end, total_minor=total + back_total, lab_minor=lab + back_lab)

    def facts(self, day: date) -> FundingFacts:
        if day < self.first_day:
            raise ValueError(f"{day} is before {self.first_day}, the first day this memory covers")
        last = day + timedelta(days=self.window_days - 1)
        lo = bisect.bisect_right(self._points, day)
        hi = bisect.bisect_right(self._points, last)
        return FundingFacts(tuple(self._window(end) for end in [day, *self._points[lo:hi]]))


# --- every day of a range -------------------------------------------------------------------

@dataclass
class RefundedGift:
    """An accepted cash gift's refunds, as the window sums count them."""

    day: date
    lab_minor: int
    total_minor: int
    #: (refunded_on, reporting amount), oldest first.
    refunds: list[tuple[date, int]]
    gift_id: int | None = None

    def steps(self) -> list[tuple[date, int, int]]:
        """Each refund with the lab money it takes back: the step it makes in
        refunded_lab(refunded so far), so a full refund takes back exactly the gift's lab
        part."""
        steps, refunded, lab_before = [], 0, 0
        for refunded_on, amount in sorted(self.refunds):
            refunded += amount
            lab_now = refunded_lab(refunded, self.lab_minor, self.total_minor)
            steps.append((refunded_on, amount, lab_now - lab_before))
            lab_before = lab_now
        return steps


def refunded_gifts(session: Session, first_day: date, last_day: date,
                   refunded_by: date | None = None) -> list[RefundedGift]:
    """Accepted cash gifts dated first_day..last_day with their refunds made by
    `refunded_by` (default last_day)."""
    refunded_by = refunded_by or last_day
    # One statement: the refunds by their gift-date index, each with its gift by primary key.
    # Status and kind are checked here, not in the query: with a condition on the gift
    # SQLite's planner, which has no statistics, walked every accepted gift of the ledger to
    # find the few refunded ones. Read through the connection: plain tuples, no ORM rows.
    rows = session.connection().execute(
        select(Refund.gift_id, Refund.gift_received_on, Refund.refunded_on,
               Refund.reporting_amount_minor, Gift.lab_minor, Gift.reporting_amount_minor,
               Gift.status, Gift.kind)
        .join(Gift, Gift.id == Refund.gift_id)
        .where(Refund.gift_received_on >= first_day, Refund.gift_received_on <= last_day,
               Refund.refunded_on <= refunded_by)
    ).all()
    gifts: dict[int, RefundedGift] = {}
    for gift_id, day, refunded_on, amount, lab, total, status, kind in rows:
        if status == "accepted" and kind == "cash":
            gift = gifts.get(gift_id)
            if gift is None:
                gift = gifts[gift_id] = RefundedGift(day, lab, total, [], gift_id)
            gift.refunds.append((refunded_on, amount))
    return list(gifts.values())


def daily_windows(session: Session, start: date, end: date, window_days: int) -> list[WindowTotals]:
    """Window totals for every day from start to end (both included), oldest first."""
    if end < start:
        return []
    first = window_start(start, window_days)
    span = (end - first).days + 1
    total = [0] * (span + 1)  # total[i + 1] - total[i] = funding dated first + i days
    lab = [0] * (span + 1)
    for day, day_total, day_lab in session.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor)
        .where(FundingDay.day >= first, FundingDay.day <= end)
    ).all():
        i = (day - first).days
        total[i + 1] += day_total
        lab[i + 1] += day_lab
    for i in range(span):
        total[i + 1] += total[i]
        lab[i + 1] += lab[i]

    refund_total = [0] * (span + 1)
    refund_lab = [0] * (span + 1)
    for gift in refunded_gifts(session, first, end):
        stops = min((gift.day - first).days + window_days, span)
        for refunded_on, amount, lab_part in gift.steps():
            begins = (refunded_on - first).days
            if begins < stops:
                refund_total[begins] += amount
                refund_lab[begins] += lab_part
                refund_total[stops] -= amount
                refund_lab[stops] -= lab_part

    result = []
    running_total = running_lab = 0
    for i in range(span):
        running_total += refund_total[i]
        running_lab += refund_lab[i]
        if i < window_days - 1:
            continue  # a day before `start`: only feeds the windows that follow
        lo = i + 1 - window_days
        result.append(WindowTotals(
            end=first + timedelta(days=i),
            total_minor=total[i + 1] - total[lo] - running_total,
            lab_minor=lab[i + 1] - lab[lo] - running_lab,
        ))
    return result
