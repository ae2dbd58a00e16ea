"""Schedule B (Form 990) from the ledger: the year's accepted gifts, cash and in-kind, each
at its reporting amount less refunds dated on or before the year's last day, and whether the
organisation may use the special rule (it meets the 33 1/3% test for the year:
app.ledger.public_support)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotAllowed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.public_support import public_support
from models import Donor, Gift, Refund
from policies.public_support import PublicSupportRules
from policies.schedule_b import ScheduleB, YearGift, schedule_b

#: Who may see the staff copy (contributors' names and postal addresses), on the page, in
#: the API and as CSV: those who may export the ledger. The public copy is everyone's.
STAFF_COPY_PERMISSION = "exports"


def staff_copy_seen(session: Session, actor: Actor, year: int, how: str,
                    contributors: int) -> None:
    """Audit one view of the staff copy, as an export: who, when, which year, how (html,
    json, csv) and how many contributors it named. Ids and counts only, no names."""
    with ledger_write(session):
        audit.append(session, actor, "export.schedule_b_staff", "export", None, {
            "year": year, "copy": "staff", "format": how, "contributors": contributors})


@dataclass
class LedgerScheduleB:
    schedule: ScheduleB
    currency: str
    #: donor id -> (name, postal address, type), for the listed contributors.
    donors: dict[int, tuple[str, str | None, str]]
    public_support_percentage: str | None


def year_gifts(session: Session, year: int) -> list[YearGift]:
    first, last = date(year, 1, 1), date(year, 12, 31)
    in_year = (Gift.status == "accepted", Gift.received_on >= first, Gift.received_on <= last)
    refunded = dict(session.execute(
        select(Refund.gift_id, func.sum(Refund.reporting_amount_minor))
        .join(Gift, Gift.id == Refund.gift_id)
        .where(*in_year, Refund.refunded_on <= last).group_by(Refund.gift_id)).all())
    return [YearGift(gift_id=gift_id, donor_id=donor_id, kind=kind,
                     amount_minor=amount - int(refunded.get(gift_id) or 0),
                     description=description, received_on=received_on.isoformat())
            for gift_id, donor_id, kind, amount, description, received_on in session.execute(
                select(Gift.id, Gift.donor_id, Gift.kind, Gift.reporting_amount_minor,
                       Gift.description, Gift.received_on).where(*in_year))]


def schedule_b_of(session: Session, year: int, rules: PublicSupportRules,
                  currency: str) -> LedgerScheduleB:
    if currency != rules.schedule_b_currency:
        raise NotAllowed(f"Schedule B's threshold is in {rules.schedule_b_currency}; the "
                         f"reporting currency is {currency}")
    support = public_support(session, year, rules, currency, gift_ids=False)
    result = schedule_b(year, year_gifts(session, year), rules,
                        special_rule=support.result.meets_support_test)
    ids = [c.donor_id for c in result.contributors]
    donors = {}
    if ids:
        donors = {d: (name, address, kind) for d, name, address, kind in session.execute(
            select(Donor.id, Donor.name, Donor.postal_address, Donor.type)
            .where(Donor.id.in_(ids)))}
    return LedgerScheduleB(schedule=result, currency=currency, donors=donors,
                           public_support_percentage=support.result.percentage_text)
