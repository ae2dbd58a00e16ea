"""The compliance summary, series, forecast, counts, runway and goals as JSON.

One shape for every reader: the API's compliance endpoints, the dashboard's JSON twin
and the CLI's --json. Same conventions as the rest of the API: shares as decimal
strings truncated to six places, amounts as decimal strings in major units, dates as
ISO 8601.
"""

from __future__ import annotations

from app.ledger.counts import ComplianceCounts
from app.ledger.finance import GoalProgress, Runway, months_text
from app.ledger.forecast import Forecast
from app.ledger.series import MonthMix, ShareSeries
from app.ledger.summary import Summary
from models.money import format_amount
from policies import share_text


def _iso(value):
    return value.isoformat() if value is not None else None


def summary_public(summary: Summary) -> dict:
    return {
        "as_of": _iso(summary.as_of),
        "lab_employee_share": share_text(summary.lab_employee_share),
        "cap": str(summary.cap),
        "warning": str(summary.warning),
        "headroom": format_amount(summary.headroom_minor, summary.currency),
        "currency": summary.currency,
        "window_start": _iso(summary.window_start),
        "window_end": _iso(summary.window_end),
        "total_funding": format_amount(summary.total_minor, summary.currency),
        "lab_employee_funding": format_amount(summary.lab_minor, summary.currency),
        "in_breach": summary.in_breach,
        "breach_since": _iso(summary.breach_since),
        "policy_version": summary.policy_version,
    }


def series_public(series: ShareSeries, months: list[MonthMix], currency: str,
                  policy_version: str) -> dict:
    money = lambda minor: format_amount(minor, currency)  # noqa: E731
    return {
        "from": series.start.isoformat(),
        "to": series.end.isoformat(),
        "window_days": series.window_days,
        "cap": str(series.cap),
        "warning": str(series.warning),
        "currency": currency,
        "policy_version": policy_version,
        "days": [{
            "date": d.day.isoformat(),
            "total_funding": money(d.total_minor),
            "lab_employee_funding": money(d.lab_minor),
            "lab_employee_share": share_text(d.share),
            "in_breach": d.in_breach,
        } for d in series.days],
        "breach_periods": [{
            "from": b.first_day.isoformat(),
            "to": b.last_day.isoformat(),
            "days": b.days,
            "ongoing": b.ongoing,
        } for b in series.breaches],
        "months": [{
            "month": m.label,
            "from": m.first_day.isoformat(),
            "to": m.last_day.isoformat(),
            "total_funding": money(m.total_minor),
            "lab_employees": money(m.lab_minor),
            "individuals": money(m.individuals_minor),
            "foundations": money(m.foundations_minor),
            "other": money(m.other_minor),
        } for m in months],
    }


def forecast_public(forecast: Forecast) -> dict:
    money = lambda minor: format_amount(minor, forecast.currency)  # noqa: E731
    return {
        "as_of": forecast.today.isoformat(),
        "window_days": forecast.window_days,
        "currency": forecast.currency,
        "months": [{
            "window_end": m.end.isoformat(),
            "recorded_funding": money(m.recorded_total_minor),
            "recorded_lab_employee_funding": money(m.recorded_lab_minor),
            "expected_funding": money(m.expected_total_minor),
            "expected_lab_employee_funding": money(m.expected_lab_minor),
            "lab_employee_share": share_text(m.share),
            "in_breach": m.in_breach,
            "at_warning": m.at_warning,
            "non_lab_funding_needed": money(m.non_lab_needed_minor),
        } for m in forecast.months],
        "overdue_instalments_not_assumed": money(forecast.overdue_minor),
        "left_out": [{
            "source": item.source, "id": item.source_id, "reason": item.reason,
            "amount": format_amount(item.amount_minor, item.currency), "currency": item.currency,
        } for item in forecast.left_out],
    }


def counts_public(counts: ComplianceCounts, currency: str) -> dict:
    return {
        "period_from": counts.period_start.isoformat(),
        "period_to": counts.period_end.isoformat(),
        "held_gifts": counts.held,
        "rescreen_flags": counts.rescreen_flags,
        "overrides_in_period": counts.overrides,
        "lab_evaluation_payments_accepted": counts.lab_evaluation_payments,
        "lab_evaluation_payments_amount": format_amount(counts.lab_evaluation_amount_minor,
                                                        currency),
        "in_kind_active": counts.in_kind_active,
        "in_kind_active_with_labs": counts.in_kind_active_labs,
    }


def runway_public(result: Runway) -> dict:
    money = lambda minor: format_amount(minor, result.currency) if minor is not None else None  # noqa: E731
    return {
        "as_of": result.today.isoformat(),
        "currency": result.currency,
        "cash_on_hand": money(result.cash.amount_minor) if result.cash else None,
        "cash_as_of": result.cash.as_of.isoformat() if result.cash else None,
        "spend_months": [m.month.strftime("%Y-%m") for m in result.spend],
        "average_monthly_spend": money(result.average_spend_minor),
        "runway_months": months_text(result.months) if result.months is not None else None,
        "pledged_next_12_months": money(result.pledged_minor),
        "runway_months_with_pledges": months_text(result.months_with_pledges)
        if result.months_with_pledges is not None else None,
    }


def goal_public(progress: GoalProgress) -> dict:
    goal = progress.goal
    money = lambda minor: format_amount(minor, goal.currency) if minor is not None else None  # noqa: E731
    return {
        "id": goal.id,
        "name": goal.name,
        "amount": money(goal.amount_minor),
        "currency": goal.currency,
        "starts_on": goal.starts_on.isoformat(),
        "deadline": goal.deadline.isoformat(),
        "gifts": money(progress.gifts_minor),
        "pledges": money(progress.pledges_minor),
        "raised": money(progress.raised_minor),
        "remaining": money(progress.remaining_minor),
        "progress": share_text(progress.fraction),
        "months_left": progress.months_left,
        "needed_per_month": money(progress.per_month_minor),
    }
