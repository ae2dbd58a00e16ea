"""What if the policy's numbers had been different? A replay that writes nothing.

The ledger's gifts dated in a range are replayed in date order (then in the order they
were recorded) through policies.evaluate twice, on the same facts:

- with the policy in force ("current"), and
- with the same policy but other numbers ("what-if": cap, window, cooling-off period).

Each replay keeps its own running daily totals in memory, starting from the funding that
was actually accepted before the range. A gift's window is the one ending on its date, as
it stood when the gifts before it had been decided in that replay.

Which gifts count as funding in a replay:

- current: the gifts actually accepted, at the lab-employee part recorded for them, so the
  current replay's totals are the ledger's own;
- what-if: a gift whose automatic outcome does not change keeps its actual fate (accepted
  by the policy, or by a reviewer); a gift whose outcome changes follows the what-if
  outcome: accepted counts, rejected does not, held counts only if a reviewer actually
  accepted it. Its lab-employee part is recomputed when the cooling-off period changes.

A gift is listed as decided differently when the what-if outcome differs from the current
replay's outcome: that difference is the numbers' doing, not a reviewer's or a late fact's.
Refunds count from their dates, for gifts the replay counts. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select
from sqlmodel import Session

from app.ledger.bulk_facts import BulkFacts
from app.ledger.windows import RefundedGift, refunded_gifts
from models import Attribution, FundingDay, Gift, Refund
from policies import (
    Evaluation,
    FundingFacts,
    Policy,
    PolicyError,
    WindowTotals,
    below_cap,
    evaluate,
    lab_employee_minor,
    share,
)
from policies.document import policy_from_mapping

#: The longest range a replay covers, and the largest window or cooling-off accepted.
MAX_RANGE_DAYS = 5 * 366
MAX_DAYS_SETTING = 10 * 366
REPLAYED_STATUSES = ("accepted", "held", "rejected")


def what_if_policy(base: Policy, *, cap: Decimal | None = None, window_days: int | None = None,
                   cooling_off_days: int | None = None) -> Policy:
    """The base policy with other numbers, checked as a policy document would be.

    The warning level follows a lowered cap down (it may not exceed the cap).
    """
    new_cap = base.cap if cap is None else cap
    doc = {
        "version": f"{base.version} (what-if)",
        "name": base.name,
        "lab_employee_share": {
            "cap": str(new_cap),
            "warning": str(min(base.warning, new_cap)) if _is_number(new_cap) else str(base.warning),
            "window_days": base.window_days if window_days is None else window_days,
        },
        "affiliation": {
            "cooling_off_days": base.cooling_off_days if cooling_off_days is None
            else cooling_off_days,
        },
        "outcomes": dict(base.outcomes),
        "statements": dict(base.statements),
    }
    policy = policy_from_mapping(doc)
    for name, value in (("window_days", policy.window_days),
                        ("cooling_off_days", policy.cooling_off_days)):
        if value > MAX_DAYS_SETTING:
            raise PolicyError(f"{name} must be at most {MAX_DAYS_SETTING} days for a replay")
    return policy


def _is_number(value: object) -> bool:
    try:
        return Decimal(str(value)).is_finite()
    except ArithmeticError:
        return False


class _Fenwick:
    """Prefix sums over day offsets with point updates, in O(log n) each."""

    def __init__(self, size: int):
        self.tree = [0] * (size + 1)

    def add(self, index: int, value: int) -> None:
        index += 1
        while index < len(self.tree):
            self.tree[index] += value
            index += index & -index

    def prefix(self, index: int) -> int:
        """Sum of positions 0..index (inclusive); 0 for a negative index."""
        index = min(index + 1, len(self.tree) - 1)
        total = 0
        while index > 0:
            total += self.tree[index]
            index -= index & -index
        return total


class RunningFunding:
    """One replay's funding in memory: amounts by gift day, and refunds by their dates."""

    def __init__(self, first_day: date, last_day: date, window_days: int):
        self.first_day = first_day
        self.window_days = window_days
        size = (last_day - first_day).days + window_days + 1
        self._total, self._lab = _Fenwick(size), _Fenwick(size)
        # Refunds as a difference array: -amount from the refund's date, +amount back once
        # the window no longer contains the gift's date.
        self._refund_total, self._refund_lab = _Fenwick(size), _Fenwick(size)

    def _offset(self, day: date) -> int:
        return (day - self.first_day).days

    def add_gift(self, day: date, total: int, lab: int) -> None:
        self._total.add(self._offset(day), total)
        self._lab.add(self._offset(day), lab)

    def add_refunds(self, gift: RefundedGift) -> None:
        stops = self._offset(gift.day) + self.window_days
        for refunded_on, total, lab in gift.steps():
            begins = self._offset(refunded_on)
            if begins >= stops:
                continue  # refunded after the gift had left every window
            self._refund_total.add(begins, total)
            self._refund_lab.add(begins, lab)
            self._refund_total.add(stops, -total)
            self._refund_lab.add(stops, -lab)

    def window(self, end: date) -> WindowTotals:
        e = self._offset(end)
        s = e - self.window_days
        return WindowTotals(
            end=end,
            total_minor=self._total.prefix(e) - self._total.prefix(s) - self._refund_total.prefix(e),
            lab_minor=self._lab.prefix(e) - self._lab.prefix(s) - self._refund_lab.prefix(e),
        )


@dataclass(frozen=True)
class Difference:
    gift_id: int
    received_on: date
    donor_id: int
    donor_name: str
    amount_minor: int
    currency: str
    #: The gift's status in the ledger.
    actual_status: str
    #: The outcome the current policy gives in the replay.
    current_outcome: str
    whatif_outcome: str
    reasons: list[str]
    share_before: Fraction
    share_after: Fraction
    #: The rules behind the difference: those that fire under one policy and not the other
    #: (or, when the same rules fire, those whose outcome setting differs).
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShareAtEnd:
    window_days: int
    total_minor: int
    lab_minor: int
    cap: Decimal

    @property
    def share(self) -> Fraction:
        return share(self.lab_minor, self.total_minor)

    @property
    def in_breach(self) -> bool:
        return not below_cap(self.lab_minor, self.total_minor, self.cap)


@dataclass(frozen=True)
class ReplayDay:
    day: date
    current: Fraction
    whatif: Fraction


@dataclass(frozen=True)
class WhatIfResult:
    start: date
    end: date
    current_policy: Policy
    whatif_policy: Policy
    replayed: int
    differences: list[Difference]
    current: ShareAtEnd
    whatif: ShareAtEnd
    #: The share in each replay, day by day over the range.
    days: list[ReplayDay]

    @property
    def current_peak(self) -> Fraction:
        return max((d.current for d in self.days), default=Fraction(0))

    @property
    def whatif_peak(self) -> Fraction:
        return max((d.whatif for d in self.days), default=Fraction(0))

    @property
    def current_breach_days(self) -> int:
        cap = Fraction(self.current_policy.cap)
        return sum(1 for d in self.days if d.current >= cap)

    @property
    def whatif_breach_days(self) -> int:
        cap = Fraction(self.whatif_policy.cap)
        return sum(1 for d in self.days if d.whatif >= cap)


def _fired(evaluation: Evaluation) -> dict[str, str]:
    return {f.rule: f.message for f in evaluation.fired if f.outcome != "accept"}


def _explain(current: Evaluation, whatif: Evaluation) -> list[str]:
    """Why the what-if outcome differs: the rules that now fire, or no longer fire."""
    now, before = _fired(whatif), _fired(current)
    reasons = [message for rule, message in now.items() if rule not in before]
    for rule in before:
        if rule not in now:
            passed = next((f.message for f in whatif.findings if f.rule == rule), "")
            reasons.append(f"No longer applies: {passed}")
    if not reasons:  # same rules, another outcome (a rule's outcome setting)
        reasons = list(now.values()) or ["The what-if policy accepts it."]
    return reasons


def _rules_behind(current: Evaluation, whatif: Evaluation) -> tuple[str, ...]:
    now, before = _fired(whatif), _fired(current)
    changed = sorted(set(now) ^ set(before))
    return tuple(changed or sorted(now) or sorted(before))


def _history(session: Session, first_day: date, start: date, end: date,
             replays: list[RunningFunding]) -> None:
    """Funding actually accepted before the range, and its refunds made by `end`."""
    for day, total, lab in session.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor)
        .where(FundingDay.day >= first_day, FundingDay.day < start)
    ).all():
        for replay in replays:
            replay.add_gift(day, total, lab)
    if start > first_day:
        for gift in refunded_gifts(session, first_day, start - timedelta(days=1), end):
            for replay in replays:
                replay.add_refunds(gift)


def replay(session: Session, base: Policy, whatif: Policy, start: date, end: date) -> WhatIfResult:
    """Replay the gifts dated start..end under both policies. Reads only."""
    if end < start:
        raise ValueError("the range ends before it starts")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"a replay covers at most {MAX_RANGE_DAYS} days")
    longest = max(base.window_days, whatif.window_days)
    first_day = start - timedelta(days=longest - 1)
    current_run = RunningFunding(first_day, end, base.window_days)
    whatif_run = RunningFunding(first_day, end, whatif.window_days)
    _history(session, first_day, start, end, [current_run, whatif_run])

    gifts = session.execute(
        select(Gift).where(Gift.received_on >= start, Gift.received_on <= end,
                           Gift.status.in_(REPLAYED_STATUSES))
        .order_by(Gift.received_on, Gift.id)
    ).scalars().all()
    ids = [g.id for g in gifts]
    shares: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    refunds: dict[int, list[tuple[date, int]]] = {i: [] for i in ids}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        for gift_id, donor_id, ppm in session.execute(
            select(Attribution.gift_id, Attribution.donor_id, Attribution.fraction_ppm)
            .where(Attribution.gift_id.in_(chunk)).order_by(Attribution.id)
        ).all():
            shares[gift_id].append((donor_id, ppm))
        for gift_id, refunded_on, amount in session.execute(
            select(Refund.gift_id, Refund.refunded_on, Refund.reporting_amount_minor)
            .where(Refund.gift_id.in_(chunk), Refund.refunded_on <= end)
        ).all():
            refunds[gift_id].append((refunded_on, amount))
    source = BulkFacts(session, {g.donor_id for g in gifts}
                       | {d for pairs in shares.values() for d, _ in pairs})

    same_cooling_off = base.cooling_off_days == whatif.cooling_off_days
    differences: list[Difference] = []
    for gift in gifts:
        facts = source.gift_facts(
            donor_id=gift.donor_id, shares=shares[gift.id], received_on=gift.received_on,
            reporting_amount_minor=gift.reporting_amount_minor,
            reporting_currency=gift.reporting_currency, kind=gift.kind, purpose=gift.purpose,
            is_matching_gift=gift.matching_gift_for_id is not None,
        )
        before = whatif_run.window(gift.received_on)
        current = evaluate(base, facts, FundingFacts((current_run.window(gift.received_on),)))
        other = evaluate(whatif, facts, FundingFacts((before,)))
        accepted = gift.status == "accepted"
        if gift.kind == "cash":
            if accepted:
                _count(current_run, gift, gift.lab_minor, refunds[gift.id])
            if other.outcome == current.outcome:
                counts = accepted
            else:
                counts = other.outcome == "accept" or (other.outcome == "hold" and accepted)
            if counts:
                lab = (gift.lab_minor if accepted and same_cooling_off
                       else lab_employee_minor(facts, whatif.cooling_off_days))
                _count(whatif_run, gift, lab, refunds[gift.id])
        if other.outcome != current.outcome:
            donor = source.donors.get(gift.donor_id)
            added = lab_employee_minor(facts, whatif.cooling_off_days)
            counted = gift.reporting_amount_minor if gift.kind == "cash" else 0
            differences.append(Difference(
                gift_id=gift.id, received_on=gift.received_on, donor_id=gift.donor_id,
                donor_name=donor.name if donor else f"donor {gift.donor_id}",
                amount_minor=gift.amount_minor, currency=gift.currency,
                actual_status=gift.status, current_outcome=current.outcome,
                whatif_outcome=other.outcome, reasons=_explain(current, other),
                share_before=share(before.lab_minor, before.total_minor),
                share_after=share(before.lab_minor + added, before.total_minor + counted),
                rules=_rules_behind(current, other),
            ))

    days = []
    for i in range((end - start).days + 1):
        day = start + timedelta(days=i)
        c, w = current_run.window(day), whatif_run.window(day)
        days.append(ReplayDay(day, share(c.lab_minor, c.total_minor),
                              share(w.lab_minor, w.total_minor)))
    last_current, last_whatif = current_run.window(end), whatif_run.window(end)
    return WhatIfResult(
        start=start, end=end, current_policy=base, whatif_policy=whatif, replayed=len(gifts),
        differences=differences,
        current=ShareAtEnd(base.window_days, last_current.total_minor, last_current.lab_minor,
                           base.cap),
        whatif=ShareAtEnd(whatif.window_days, last_whatif.total_minor, last_whatif.lab_minor,
                          whatif.cap),
        days=days,
    )


def _count(run: RunningFunding, gift: Gift, lab: int,
           refunds: list[tuple[date, int]]) -> None:
    run.add_gift(gift.received_on, gift.reporting_amount_minor, lab)
    if refunds:
        run.add_refunds(RefundedGift(gift.received_on, lab, gift.reporting_amount_minor, refunds))

