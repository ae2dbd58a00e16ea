"""Where the lab-employee share is heading: the window ending on each coming month's last day.

Each window holds the funding already recorded in it (older money ages out as the window
moves on) plus the money expected in it: unpaid pledge instalments falling due from today,
and the payments of active monthly online donations. Nothing else is assumed, so a month
shown at or above the cap is a breach that will happen unless new non-lab money arrives;
the forecast says how much would avoid it.

Expected money counts only if the policy would accept it apart from the cap: a payment the
other rules would hold or reject (a lab's own money, a senior decision-maker) is left out
and listed. Money in a currency other than the reporting currency has no stored rate yet
and is left out too.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from sqlalchemy import select
from sqlmodel import Session

from app.ledger import windows
from app.ledger.bulk_facts import PPM, BulkFacts
from app.ledger.pledges import pledge_schedules
from app.ledger.series import month_end
from models import OnlineDonation, Pledge
from policies import FundingFacts, GiftFacts, Policy, WindowTotals, below_cap, evaluate, share
from policies.share import lab_employee_minor

#: How many month ends the forecast covers, the current month's included.
HORIZON_MONTHS = 12


@dataclass(frozen=True)
class Inflow:
    day: date
    total_minor: int
    lab_minor: int
    #: "pledge" (an unpaid instalment) or "monthly" (an online monthly donation's payment).
    source: str
    #: The pledge's or the online donation's id.
    source_id: int


@dataclass(frozen=True)
class LeftOut:
    """Expected money the forecast does not count, and why."""

    source: str
    source_id: int
    reason: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class ForecastMonth:
    #: The month's last day: the window ending here.
    end: date
    recorded_total_minor: int
    recorded_lab_minor: int
    expected_total_minor: int
    expected_lab_minor: int
    cap: Fraction
    warning: Fraction

    @property
    def total_minor(self) -> int:
        return self.recorded_total_minor + self.expected_total_minor

    @property
    def lab_minor(self) -> int:
        return self.recorded_lab_minor + self.expected_lab_minor

    @property
    def share(self) -> Fraction:
        return share(self.lab_minor, self.total_minor)

    @property
    def in_breach(self) -> bool:
        return not below_cap(self.lab_minor, self.total_minor, self.cap)

    @property
    def at_warning(self) -> bool:
        return self.share >= self.warning

    @property
    def label(self) -> str:
        return self.end.strftime("%Y-%m")

    @property
    def non_lab_needed_minor(self) -> int:
        """More non-lab funding in this window that would bring the share below the cap:
        the smallest y with L / (T + y) < cap."""
        if self.lab_minor <= 0 or not self.in_breach:
            return 0
        limit = Fraction(self.lab_minor) / self.cap - self.total_minor  # y must exceed this
        return max(0, limit.numerator // limit.denominator + 1)


@dataclass(frozen=True)
class Forecast:
    today: date
    window_days: int
    currency: str
    months: list[ForecastMonth]
    inflows: list[Inflow]
    #: Unpaid instalments already past due: not assumed to arrive.
    overdue_minor: int
    #: Expected money not counted, and why.
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def first_breach(self) -> ForecastMonth | None:
        return next((m for m in self.months if m.in_breach), None)


def _month_ends(today: date, count: int) -> list[date]:
    ends = []
    current = today.replace(day=1)
    for _ in range(count):
        ends.append(month_end(current))
        current = month_end(current) + timedelta(days=1)
    return ends


def _payment_day(year: int, month: int, day_of_month: int) -> date:
    return date(year, month, min(day_of_month, calendar.monthrange(year, month)[1]))


def _blocking_rules(policy: Policy, facts: GiftFacts) -> list[str]:
    """Rules other than the cap that would hold or reject this money."""
    empty = FundingFacts((WindowTotals(facts.received_on, 0, 0),))
    return [f.rule for f in evaluate(policy, facts, empty).fired
            if f.rule != "lab_employee_cap" and f.outcome != "accept"]


def share_forecast(session: Session, today: date, policy: Policy, currency: str,
                   months: int = HORIZON_MONTHS) -> Forecast:
    ends = _month_ends(today, months)
    horizon = ends[-1]
    left_out: dict[tuple[str, int, str, str], int] = {}

    pledges = session.execute(
        select(Pledge).where(Pledge.state == "active").order_by(Pledge.id)
    ).scalars().all()
    schedules = pledge_schedules(session, [p.id for p in pledges], today)
    # A donation's donors are records once its payment arrived (app.payments.recording).
    donations = session.execute(
        select(OnlineDonation).where(OnlineDonation.frequency == "monthly",
                                     OnlineDonation.state == "active",
                                     OnlineDonation.donor_id.is_not(None),
                                     OnlineDonation.payer_donor_id.is_not(None))
        .order_by(OnlineDonation.id)
    ).scalars().all()
    facts_source = BulkFacts(session, [p.donor_id for p in pledges]
                             + [d.donor_id for d in donations]
                             + [d.payer_donor_id for d in donations])

    inflows: list[Inflow] = []
    overdue = 0

    def leave_out(source: str, source_id: int, reason: str, amount: int, code: str) -> None:
        key = (source, source_id, reason, code)
        left_out[key] = left_out.get(key, 0) + amount

    def expect(source: str, source_id: int, payer_id: int, donor_id: int, day: date,
               amount: int) -> None:
        facts = facts_source.gift_facts(donor_id=payer_id, shares=[(donor_id, PPM)],
                                        received_on=day, reporting_amount_minor=amount,
                                        reporting_currency=currency)
        rules = _blocking_rules(policy, facts)
        if rules:
            leave_out(source, source_id, "the policy would hold or reject it: " + ", ".join(rules),
                      amount, currency)
            return
        inflows.append(Inflow(day, amount, lab_employee_minor(facts, policy.cooling_off_days),
                              source, source_id))

    for pledge in pledges:
        for item in schedules[pledge.id]:
            remaining = item.amount_minor - item.paid_minor
            if remaining <= 0 or item.due_on > horizon:
                continue
            if pledge.currency != currency:
                leave_out("pledge", pledge.id, "not in the reporting currency", remaining,
                          pledge.currency)
            elif item.state == "overdue":
                overdue += remaining
            else:
                expect("pledge", pledge.id, pledge.donor_id, pledge.donor_id, item.due_on,
                       remaining)

    for donation in donations:
        day_of_month = donation.created_at.day
        for end in ends:
            day = _payment_day(end.year, end.month, day_of_month)
            if day <= today:  # today's payment may already be in the ledger
                continue
            if donation.currency != currency:
                leave_out("monthly", donation.id, "not in the reporting currency",
                          donation.amount_minor, donation.currency)
            else:
                expect("monthly", donation.id, donation.payer_donor_id, donation.donor_id, day,
                       donation.amount_minor)

    recorded = windows.window_totals(session, ends, policy.window_days)
    result = []
    for end, window in zip(ends, recorded, strict=True):
        start = windows.window_start(end, policy.window_days)
        expected = [f for f in inflows if start <= f.day <= end]
        result.append(ForecastMonth(
            end=end,
            recorded_total_minor=window.total_minor,
            recorded_lab_minor=window.lab_minor,
            expected_total_minor=sum(f.total_minor for f in expected),
            expected_lab_minor=sum(f.lab_minor for f in expected),
            cap=Fraction(policy.cap),
            warning=Fraction(policy.warning),
        ))
    inflows.sort(key=lambda f: (f.day, f.source, f.source_id))
    return Forecast(today, policy.window_days, currency, result, inflows, overdue, [
        LeftOut(source, source_id, reason, amount, code)
        for (source, source_id, reason, code), amount in sorted(left_out.items())
    ])

