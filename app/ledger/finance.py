"""Budget, cash, spend and goals: the writes (locked, audited) and the arithmetic on them.

Runway, in months = latest cash on hand / average monthly spend, where the average is
taken over the three most recent months with recorded spend before the current month
(complete months only). "Runway with pledges" adds to the cash the unpaid parts of pledge
instalments falling due from today to twelve months ahead.

A goal's progress = accepted cash gifts dated from its start to its deadline (reporting
amounts, net of refunds) + pledges made in that period (their full amounts). A payment
towards a pledge counted that way is not counted again as a gift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from sqlalchemy import func, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.pledges import InstalmentState, add_months, pledge_schedules
from models import (
    CashSnapshot,
    Donor,
    FiscalBudget,
    FundingDay,
    FundraisingGoal,
    Gift,
    MonthlySpend,
    Pledge,
    Refund,
    utcnow,
)
from models.finance import (
    CashSnapshotCreate,
    FiscalBudgetCreate,
    FundraisingGoalCreate,
    MonthlySpendCreate,
)
from models.money import format_amount

#: How many recorded months of spend the runway averages.
SPEND_MONTHS = 3
#: How far ahead pledged money counts towards "runway with pledges".
PLEDGE_HORIZON_MONTHS = 12


def _reporting_only(currency: str, reporting_currency: str) -> None:
    if currency != reporting_currency:
        raise ValidationFailed({"currency": [
            f"finance figures are kept in the reporting currency {reporting_currency}"
        ]})


# --- writes ------------------------------------------------------------------------------------

def _set_figure(session: Session, model, key_column, key, data, actor: Actor, action: str,
                details: dict):
    """The one row of `model` for `key` (created, or its amount replaced by data's),
    audited with the amount it had before."""
    row = session.execute(select(model).where(key_column == key)).scalar_one_or_none()
    before = format_amount(row.amount_minor, row.currency) if row else None
    if row is None:
        row = model(**{key_column.key: key}, amount_minor=data.amount_minor,
                    currency=data.currency)
        session.add(row)
    else:
        row.amount_minor, row.currency, row.updated_at = data.amount_minor, data.currency, utcnow()
    session.flush()
    audit.append(session, actor, action, model.__tablename__, row.id,
                 {**details, "previous_amount": before})
    return row


def set_budget(session: Session, data: FiscalBudgetCreate, actor: Actor,
               reporting_currency: str) -> FiscalBudget:
    """Set (or change) a fiscal year's budget."""
    with ledger_write(session):
        _reporting_only(data.currency, reporting_currency)
        return _set_figure(session, FiscalBudget, FiscalBudget.fiscal_year, data.fiscal_year,
                           data, actor, "budget.set", {
                               "fiscal_year": data.fiscal_year, "amount": data.amount,
                               "currency": data.currency})


def record_cash(session: Session, data: CashSnapshotCreate, actor: Actor,
                reporting_currency: str) -> CashSnapshot:
    """Record cash on hand on a day (a second figure for the same day replaces the first)."""
    with ledger_write(session):
        _reporting_only(data.currency, reporting_currency)
        return _set_figure(session, CashSnapshot, CashSnapshot.as_of, data.as_of, data, actor,
                           "cash.recorded", {
                               "as_of": data.as_of,
                               "amount": format_amount(data.amount_minor, data.currency),
                               "currency": data.currency})


def record_spend(session: Session, data: MonthlySpendCreate, actor: Actor,
                 reporting_currency: str) -> MonthlySpend:
    """Record a month's spend (a second figure for the same month replaces the first)."""
    month = data.month.replace(day=1)
    with ledger_write(session):
        _reporting_only(data.currency, reporting_currency)
        return _set_figure(session, MonthlySpend, MonthlySpend.month, month, data, actor,
                           "spend.recorded", {
                               "month": month.strftime("%Y-%m"),
                               "amount": format_amount(data.amount_minor, data.currency),
                               "currency": data.currency})


def create_goal(session: Session, data: FundraisingGoalCreate, actor: Actor,
                reporting_currency: str) -> FundraisingGoal:
    with ledger_write(session):
        _reporting_only(data.currency, reporting_currency)
        goal = FundraisingGoal(name=data.name, amount_minor=data.amount_minor,
                               currency=data.currency, starts_on=data.starts_on,
                               deadline=data.deadline)
        session.add(goal)
        session.flush()
        audit.append(session, actor, "goal.created", "fundraising_goal", goal.id, {
            "name": data.name, "amount": data.amount, "currency": data.currency,
            "starts_on": data.starts_on, "deadline": data.deadline,
        })
    return goal


# --- runway ------------------------------------------------------------------------------------

def months_text(value: Fraction | None, places: int = 1) -> str:
    """14.26 -> '14.2': truncated, so runway is never overstated."""
    if value is None:
        return "—"
    scaled = value * 10**places
    whole = scaled.numerator // scaled.denominator
    units, decimals = divmod(whole, 10**places)
    return f"{units}.{decimals:0{places}d}" if places else str(units)


@dataclass(frozen=True)
class Runway:
    today: date
    currency: str
    #: The latest cash on hand recorded on or before today.
    cash: CashSnapshot | None
    #: The months averaged, newest first.
    spend: list[MonthlySpend]
    #: Unpaid parts of pledge instalments due from today to PLEDGE_HORIZON_MONTHS ahead.
    pledged_minor: int
    pledge_horizon: date
    #: Pledged money in other currencies, not added (no stored rate): currency -> amount.
    pledged_elsewhere: dict[str, int] = field(default_factory=dict)

    @property
    def average_spend(self) -> Fraction | None:
        if not self.spend:
            return None
        return Fraction(sum(m.amount_minor for m in self.spend), len(self.spend))

    def _months(self, money: int) -> Fraction | None:
        average = self.average_spend
        if self.cash is None or not average:
            return None
        return Fraction(money) / average

    @property
    def months(self) -> Fraction | None:
        """Cash on hand / average monthly spend."""
        return self._months(self.cash.amount_minor) if self.cash else None

    @property
    def months_with_pledges(self) -> Fraction | None:
        """(Cash on hand + pledged money due within the horizon) / average monthly spend."""
        return self._months(self.cash.amount_minor + self.pledged_minor) if self.cash else None

    @property
    def average_spend_minor(self) -> int | None:
        """The average rounded up to a whole minor unit (for display)."""
        average = self.average_spend
        return math.ceil(average) if average is not None else None


def runway(session: Session, today: date, currency: str) -> Runway:
    cash = session.execute(
        select(CashSnapshot).where(CashSnapshot.as_of <= today)
        .order_by(CashSnapshot.as_of.desc()).limit(1)
    ).scalar_one_or_none()
    spend = session.execute(
        select(MonthlySpend).where(MonthlySpend.month < today.replace(day=1))
        .order_by(MonthlySpend.month.desc()).limit(SPEND_MONTHS)
    ).scalars().all()
    horizon = add_months(today, PLEDGE_HORIZON_MONTHS)
    pledged = 0
    elsewhere: dict[str, int] = {}
    pledges = session.execute(select(Pledge).where(Pledge.state == "active")).scalars().all()
    schedules = pledge_schedules(session, [p.id for p in pledges], today)
    for pledge in pledges:
        for item in schedules[pledge.id]:
            if today <= item.due_on < horizon:
                unpaid = item.amount_minor - item.paid_minor
                if pledge.currency == currency:
                    pledged += unpaid
                elif unpaid:
                    elsewhere[pledge.currency] = elsewhere.get(pledge.currency, 0) + unpaid
    return Runway(today, currency, cash, list(spend), pledged, horizon, elsewhere)


# --- goals -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GoalProgress:
    goal: FundraisingGoal
    today: date
    #: Accepted cash gifts dated in the goal's period, net of refunds, not paying a pledge
    #: counted below.
    gifts_minor: int
    #: Pledges made in the period, at their full amounts.
    pledges_minor: int
    pledge_count: int
    #: Pledges made in the period in another currency: not counted (their payments are).
    pledges_elsewhere: dict[str, int] = field(default_factory=dict)

    @property
    def raised_minor(self) -> int:
        return self.gifts_minor + self.pledges_minor

    @property
    def remaining_minor(self) -> int:
        return max(0, self.goal.amount_minor - self.raised_minor)

    @property
    def fraction(self) -> Fraction:
        return Fraction(self.raised_minor, self.goal.amount_minor)

    @property
    def months_left(self) -> int:
        """Calendar months from this one (or the goal's first) to the deadline's, both
        included; 0 once the deadline has passed."""
        if self.today > self.goal.deadline:
            return 0
        start = max(self.today, self.goal.starts_on)
        return (self.goal.deadline.year - start.year) * 12 + self.goal.deadline.month - start.month + 1

    @property
    def per_month_minor(self) -> int | None:
        """Still needed per month until the deadline, rounded up to a whole minor unit."""
        if not self.months_left:
            return None
        return -(-self.remaining_minor // self.months_left)

    @property
    def reached(self) -> bool:
        return self.raised_minor >= self.goal.amount_minor


def _net_gifts(session: Session, *conditions) -> int:
    gross = session.execute(
        select(func.coalesce(func.sum(Gift.reporting_amount_minor), 0))
        .where(Gift.status == "accepted", Gift.kind == "cash", *conditions)
    ).scalar_one()
    refunded = session.execute(
        select(func.coalesce(func.sum(Refund.reporting_amount_minor), 0))
        .join(Gift, Gift.id == Refund.gift_id)
        .where(Gift.status == "accepted", Gift.kind == "cash", *conditions)
    ).scalar_one()
    return int(gross) - int(refunded)


def goal_progress(session: Session, goal: FundraisingGoal, today: date) -> GoalProgress:
    starts, deadline = goal.starts_on, goal.deadline
    # Funding by day is already summed in funding_day; only the refunds of those gifts
    # and the payments of pledges made in the period need the gift table.
    gross = session.execute(
        select(func.coalesce(func.sum(FundingDay.total_minor), 0))
        .where(FundingDay.day >= starts, FundingDay.day <= deadline)
    ).scalar_one()
    refunded = session.execute(
        select(func.coalesce(func.sum(Refund.reporting_amount_minor), 0))
        .join(Gift, Gift.id == Refund.gift_id)
        .where(Refund.gift_received_on >= starts, Refund.gift_received_on <= deadline,
               Gift.status == "accepted", Gift.kind == "cash")
    ).scalar_one()
    pledges = session.execute(
        select(Pledge).where(Pledge.pledged_on >= starts, Pledge.pledged_on <= deadline,
                             Pledge.state != "cancelled")
    ).scalars().all()
    counted = [p for p in pledges if p.currency == goal.currency]
    elsewhere: dict[str, int] = {}
    for p in pledges:
        if p.currency != goal.currency:
            elsewhere[p.currency] = elsewhere.get(p.currency, 0) + p.amount_minor
    paying_counted = _net_gifts(
        session, Gift.pledge_id.in_([p.id for p in counted]),
        Gift.received_on >= starts, Gift.received_on <= deadline,
    ) if counted else 0
    return GoalProgress(
        goal=goal,
        today=today,
        gifts_minor=int(gross) - int(refunded) - paying_counted,
        pledges_minor=sum(p.amount_minor for p in counted),
        pledge_count=len(counted),
        pledges_elsewhere=elsewhere,
    )


def goals_progress(session: Session, today: date, *, current_only: bool = False) -> list[GoalProgress]:
    query = select(FundraisingGoal).order_by(FundraisingGoal.deadline, FundraisingGoal.id)
    if current_only:
        query = query.where(FundraisingGoal.deadline >= today)
    return [goal_progress(session, g, today) for g in session.execute(query).scalars()]


# --- multi-year pledges and the budget -----------------------------------------------------------

@dataclass(frozen=True)
class PledgeYear:
    year: int
    scheduled_minor: int
    paid_minor: int
    #: Still to pay on instalments not yet past their due date.
    due_minor: int
    #: Still to pay on instalments past their due date.
    overdue_minor: int


@dataclass(frozen=True)
class MultiYearPledge:
    pledge: Pledge
    donor: Donor | None
    years: list[PledgeYear]

    @property
    def totals(self) -> PledgeYear:
        return PledgeYear(0, *(sum(getattr(y, f) for y in self.years) for f in (
            "scheduled_minor", "paid_minor", "due_minor", "overdue_minor")))


def _by_year(schedule: list[InstalmentState]) -> list[PledgeYear]:
    years: dict[int, list[int]] = {}
    for item in schedule:
        row = years.setdefault(item.due_on.year, [0, 0, 0, 0])
        unpaid = item.amount_minor - item.paid_minor
        row[0] += item.amount_minor
        row[1] += item.paid_minor
        if item.state == "overdue":
            row[3] += unpaid
        else:
            row[2] += unpaid
    return [PledgeYear(year, *values) for year, values in sorted(years.items())]


def multi_year_pledges(session: Session, today: date) -> list[MultiYearPledge]:
    """Pledges (not cancelled) whose instalments fall in more than one calendar year."""
    pledges = session.execute(
        select(Pledge).where(Pledge.state != "cancelled").order_by(Pledge.pledged_on, Pledge.id)
    ).scalars().all()
    schedules = pledge_schedules(session, [p.id for p in pledges], today)
    result = []
    for pledge in pledges:
        years = _by_year(schedules[pledge.id])
        if len(years) > 1:
            result.append(MultiYearPledge(pledge, session.get(Donor, pledge.donor_id), years))
    return result


@dataclass(frozen=True)
class BudgetYear:
    year: int
    budget: FiscalBudget | None
    spent_minor: int
    months_recorded: int

    @property
    def remaining_minor(self) -> int | None:
        return self.budget.amount_minor - self.spent_minor if self.budget else None


def budget_year(session: Session, year: int) -> BudgetYear:
    budget = session.execute(
        select(FiscalBudget).where(FiscalBudget.fiscal_year == year)
    ).scalar_one_or_none()
    spent, months = session.execute(
        select(func.coalesce(func.sum(MonthlySpend.amount_minor), 0), func.count())
        .where(MonthlySpend.month >= date(year, 1, 1), MonthlySpend.month <= date(year, 12, 1))
    ).one()
    return BudgetYear(year, budget, int(spent), int(months))
