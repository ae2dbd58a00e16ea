"""The counts compliance staff watch: what waits for a person, and the promises kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlmodel import Session

from models import Decision, Gift, InKindArrangement, Organization, OverrideRequest


@dataclass(frozen=True)
class ComplianceCounts:
    period_start: date
    period_end: date
    #: Gifts held for a reviewer's decision.
    held: int
    #: Held gifts whose latest decision is a re-screen (facts changed after the money came).
    rescreen_flags: int
    #: Overrides of a rejection, approved by a second reviewer within the period.
    overrides: int
    #: Accepted gifts that a decision found to be a lab's payment for evaluations.
    #: The policy promises none: the dashboard shows these even when they are zero.
    lab_evaluation_payments: int
    lab_evaluation_amount_minor: int
    #: In-kind arrangements running today, and how many of them are with covered labs.
    in_kind_active: int
    in_kind_active_labs: int


def _rule_fired(reasons: list, rule: str) -> bool:
    return any(isinstance(r, dict) and r.get("rule") == rule and r.get("fired") for r in reasons)


def lab_evaluation_payments(session: Session) -> tuple[int, int]:
    """(count, reporting amount) of accepted gifts with a decision where the
    lab_evaluation_payment rule fired. That rule fires only on a gift whose purpose is
    evaluation services, so only those gifts' decisions are read."""
    gifts = dict(session.execute(
        select(Gift.id, Gift.reporting_amount_minor)
        .where(Gift.purpose == "evaluation_services", Gift.status == "accepted")
    ).all())
    if not gifts:
        return 0, 0
    found: set[int] = set()
    ids = sorted(gifts)
    for i in range(0, len(ids), 5000):
        for gift_id, reasons in session.execute(
            select(Decision.gift_id, Decision.reasons).where(Decision.gift_id.in_(ids[i:i + 5000]))
        ).all():
            if _rule_fired(reasons, "lab_evaluation_payment"):
                found.add(gift_id)
    return len(found), sum(gifts[g] for g in found)


def rescreen_flags(session: Session) -> int:
    latest = (
        select(func.max(Decision.id).label("id"))
        .join(Gift, Gift.id == Decision.gift_id)
        .where(Gift.status == "held")
        .group_by(Decision.gift_id)
        .subquery()
    )
    return session.execute(
        select(func.count()).select_from(Decision)
        .join(latest, Decision.id == latest.c.id)
        .where(Decision.kind == "rescreen")
    ).scalar_one()


def compliance_counts(session: Session, period_start: date, period_end: date, today: date,
                      timezone: ZoneInfo) -> ComplianceCounts:
    """Counts now; overrides approved between period_start and period_end (local dates)."""
    held = session.execute(select(func.count()).where(Gift.status == "held")).scalar_one()
    begins = datetime.combine(period_start, time.min, tzinfo=timezone)
    ends = datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=timezone)
    overrides = session.execute(
        select(func.count()).select_from(OverrideRequest).where(
            OverrideRequest.state == "approved",
            OverrideRequest.decided_at >= begins,
            OverrideRequest.decided_at < ends,
        )
    ).scalar_one()
    count, amount = lab_evaluation_payments(session)
    running = (InKindArrangement.start_date <= today,
               or_(InKindArrangement.end_date.is_(None), InKindArrangement.end_date >= today))
    arrangements = session.execute(
        select(InKindArrangement.organization_id).where(*running)
    ).scalars().all()
    covered = _covered_organizations(session)
    return ComplianceCounts(
        period_start=period_start,
        period_end=period_end,
        held=held,
        rescreen_flags=rescreen_flags(session),
        overrides=overrides,
        lab_evaluation_payments=count,
        lab_evaluation_amount_minor=amount,
        in_kind_active=len(arrangements),
        in_kind_active_labs=sum(1 for org in arrangements if org in covered),
    )


def _covered_organizations(session: Session) -> set[int]:
    orgs = {org_id: (lab, parent) for org_id, lab, parent in session.execute(
        select(Organization.id, Organization.covered_lab, Organization.parent_id)).all()}
    covered: set[int] = set()
    for org_id in orgs:
        seen: set[int] = set()
        current: int | None = org_id
        while current is not None and current in orgs and current not in seen:
            lab, parent = orgs[current]
            if lab:
                covered.add(org_id)
                break
            seen.add(current)
            current = parent
    return covered
