"""The compliance summary: share, headroom and breach as of a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from sqlalchemy import func, select
from sqlmodel import Session

from app.ledger import windows
from models import FundingDay
from models.money import display_amount
from policies import Policy, below_cap, headroom, percent_text, share


@dataclass(frozen=True)
class Summary:
    as_of: date
    window_start: date
    window_end: date
    total_minor: int
    lab_minor: int
    lab_employee_share: Fraction
    cap: object
    warning: object
    headroom_minor: int
    currency: str
    in_breach: bool
    breach_since: date | None
    policy_version: str

    @property
    def at_warning(self) -> bool:
        return self.lab_employee_share >= Fraction(self.warning)


def compliance_summary(session: Session, as_of: date, policy: Policy, currency: str) -> Summary:
    window = policy.window_days
    # The window ending on as_of, then one per later date with accepted gifts (as_of may be
    # in the past): the same windows a gift dated as_of would be checked against.
    totals = windows.funding_facts(session, as_of, window).windows
    today = totals[0]
    room = min(headroom(w.lab_minor, w.total_minor, policy.cap) for w in totals)
    in_breach = not below_cap(today.lab_minor, today.total_minor, policy.cap)
    return Summary(
        as_of=as_of,
        window_start=windows.window_start(as_of, window),
        window_end=as_of,
        total_minor=today.total_minor,
        lab_minor=today.lab_minor,
        lab_employee_share=share(today.lab_minor, today.total_minor),
        cap=policy.cap,
        warning=policy.warning,
        headroom_minor=room,
        currency=currency,
        in_breach=in_breach,
        breach_since=breach_start(session, as_of, policy) if in_breach else None,
        policy_version=policy.version,
    )


def summary_lines(result: Summary) -> list[str]:
    """The summary as plain text lines, for the command line and reports."""
    money = lambda minor: display_amount(minor, result.currency)  # noqa: E731
    return [
        f"Compliance summary as of {result.as_of} (policy {result.policy_version})",
        f"  window:               {result.window_start} .. {result.window_end}",
        f"  funding:              {money(result.total_minor)}",
        f"  lab-employee funding: {money(result.lab_minor)}",
        f"  lab-employee share:   {percent_text(result.lab_employee_share, 2)} "
        f"(cap {percent_text(result.cap)}, warning {percent_text(result.warning)})",
        f"  headroom:             {money(result.headroom_minor)}",
        f"  BREACH since {result.breach_since}" if result.in_breach
        else "  in breach:            no",
    ]


def breach_start(session: Session, as_of: date, policy: Policy, chunk: int = 366) -> date:
    """First day of the unbroken run of days, ending on as_of, with the share at the cap."""
    first_funding = session.execute(select(func.min(FundingDay.day))).scalar_one_or_none()
    start = as_of
    end = as_of
    while first_funding is not None and end >= first_funding:
        days = [end - timedelta(days=i) for i in range(chunk)]
        for day, totals in zip(days, windows.window_totals(session, days, policy.window_days),
                               strict=True):
            if below_cap(totals.lab_minor, totals.total_minor, policy.cap):
                return start
            start = day
        end = end - timedelta(days=chunk)
    return start
