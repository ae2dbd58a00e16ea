"""Helpers shared by the API tests: JSON bodies, row counts, error shapes."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from models import (
    Affiliation,
    Attribution,
    AuditEntry,
    Decision,
    Donor,
    FundingDay,
    Gift,
    InKindArrangement,
    Organization,
    OverrideRequest,
    Pledge,
    PledgeInstalment,
    Refund,
)

#: Every table a ledger write can touch.
LEDGER_TABLES = (Gift, Decision, Attribution, Refund, AuditEntry, FundingDay, Pledge,
                 PledgeInstalment, OverrideRequest, Affiliation, Donor, Organization,
                 InKindArrangement)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def iso(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else day


def gift_body(donor_id, amount="100.00", on="2026-03-01", currency="USD", **extra) -> dict:
    return {"donor_id": donor_id, "amount": amount, "currency": currency,
            "received_on": iso(on), **extra}


def count(db, model) -> int:
    """Rows in a table. Ends the read transaction at once: on SQLite an open one keeps
    its snapshot, and the next read would miss what the app commits meanwhile."""
    try:
        return db.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        db.rollback()


def snapshot(db) -> dict[str, int]:
    """Row counts of every ledger table, plus the funding totals, to prove nothing changed."""
    try:
        counts = {m.__name__: db.execute(select(func.count()).select_from(m)).scalar_one()
                  for m in LEDGER_TABLES}
        counts["funding_total_minor"] = db.execute(
            select(func.coalesce(func.sum(FundingDay.total_minor), 0))).scalar_one()
        counts["funding_lab_minor"] = db.execute(
            select(func.coalesce(func.sum(FundingDay.lab_minor), 0))).scalar_one()
        return counts
    finally:
        db.rollback()


def errors_of(response) -> dict[str, list[str]]:
    """The field errors of a 422 answer."""
    assert response.status_code == 422, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["error"] == "invalid input", body
    assert isinstance(body["errors"], dict) and body["errors"], body
    return body["errors"]


def fired(gift: dict) -> list[str]:
    """Rules that fired on the gift's latest decision."""
    return [r["rule"] for r in gift["decision"]["reasons"] if r["fired"]]


def reason(gift_or_decision: dict, rule: str) -> dict:
    decision = gift_or_decision.get("decision", gift_or_decision)
    return next(r for r in decision["reasons"] if r["rule"] == rule)


def status_of(api, gift_id: int) -> str:
    return api.get(f"/gifts/{gift_id}").get_json()["status"]
