"""Schedule B (Form 990) from the ledger: the year's accepted gifts, cash and in-kind, each
at its reporting amount less refunds dated on or before the year's last day, and whether the
organisation may use the special rule (it meets the 33 1/3% test for the year:
app.ledger.public_support).

The year's total and each donor's net sum are computed in the database; only the gifts of
the donors at or over the threshold are read one by one (a ledger of a million gifts has
a few of them, not every gift of the year)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, literal_column, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.db.lookups import one_of
from app.errors import NotAllowed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.public_support import public_support
from models import Donor, Gift, Refund
from policies.public_support import PublicSupportRules
from policies.schedule_b import ScheduleB, YearGift, schedule_b, threshold_minor

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


def _in_year(session: Session, year: int) -> tuple:
    """The year's accepted gifts, written so that SQLite reads them from
    ix_gift_donor_status_received_on alone (donor first, so the sums by donor need no sort):
    with the plain conditions it takes (status, received_on) and fetches each gift from the
    table. The unary plus keeps a column's condition off the indexes; PostgreSQL chooses
    its plan itself."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    status, received_on = Gift.status, Gift.received_on
    if session.get_bind().dialect.name == "sqlite":
        status, received_on = (literal_column(f"+gift.{c.name}", type_=c.type)
                               for c in (Gift.status, Gift.received_on))
    return status == "accepted", received_on >= first, received_on <= last


def _refunds_in_year(year: int) -> tuple:
    """Refunds (and reversals, negative) of the year's gifts dated on or before its last day;
    a refund carries its gift's date (indexed), so only the year's refunds are read."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    return (Refund.gift_received_on >= first, Refund.gift_received_on <= last,
            Refund.refunded_on <= last)


def year_total(session: Session, year: int) -> int:
    """The year's contributions net of refunds (Form 990, Part VIII, line 1h), summed in
    the database."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    gross = session.execute(select(func.sum(Gift.reporting_amount_minor))
                            .where(*_in_year(session, year))).scalar()
    refunded = session.execute(
        select(func.sum(Refund.reporting_amount_minor)).join(Gift, Gift.id == Refund.gift_id)
        .where(*_refunds_in_year(year), Gift.status == "accepted",
               Gift.received_on >= first, Gift.received_on <= last)).scalar()
    return int(gross or 0) - int(refunded or 0)


def listed_donor_ids(session: Session, year: int, threshold: int) -> list[int]:
    """The donors whose gifts of the year, net of refunds, reach the threshold (and are
    more than nothing): summed per donor in the database, only those listed leave it."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    gross = (select(Gift.donor_id, func.sum(Gift.reporting_amount_minor).label("amount"))
             .where(*_in_year(session, year)).group_by(Gift.donor_id).subquery())
    refunded = (select(Gift.donor_id, func.sum(Refund.reporting_amount_minor).label("amount"))
                .select_from(Refund).join(Gift, Gift.id == Refund.gift_id)
                .where(*_refunds_in_year(year), Gift.status == "accepted",
                       Gift.received_on >= first, Gift.received_on <= last)
                .group_by(Gift.donor_id).subquery())
    net = gross.c.amount - func.coalesce(refunded.c.amount, 0)
    return list(session.execute(
        select(gross.c.donor_id).outerjoin(refunded, refunded.c.donor_id == gross.c.donor_id)
        .where(net >= threshold, net > 0).order_by(gross.c.donor_id)).scalars())


def donors_year_gifts(session: Session, year: int, donor_ids: list[int]) -> list[YearGift]:
    """Every accepted gift of the year of these donors, each net of its refunds dated on or
    before the year's last day."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    in_year = (Gift.status == "accepted", Gift.received_on >= first, Gift.received_on <= last)
    found = []
    for start in range(0, len(donor_ids), 500):
        chunk = one_of(session, Gift.donor_id, donor_ids[start:start + 500])
        refunded = dict(session.execute(
            select(Refund.gift_id, func.sum(Refund.reporting_amount_minor))
            .join(Gift, Gift.id == Refund.gift_id)
            .where(*in_year, chunk, Refund.refunded_on <= last).group_by(Refund.gift_id)).all())
        found += [YearGift(gift_id=gift_id, donor_id=donor_id, kind=kind,
                           amount_minor=amount - int(refunded.get(gift_id) or 0),
                           description=description, received_on=received_on.isoformat())
                  for gift_id, donor_id, kind, amount, description, received_on
                  in session.execute(select(Gift.id, Gift.donor_id, Gift.kind,
                                            Gift.reporting_amount_minor, Gift.description,
                                            Gift.received_on).where(*in_year, chunk))]
    return found


def year_schedule(session: Session, year: int, rules: PublicSupportRules, *,
                  special_rule: bool) -> ScheduleB:
    """The year summed in the database; only the gifts of the donors listed are read."""
    total = year_total(session, year)
    listed = listed_donor_ids(session, year, threshold_minor(total, rules,
                                                             special_rule=special_rule))
    return schedule_b(year, donors_year_gifts(session, year, listed), rules,
                      special_rule=special_rule, total_minor=total)


def schedule_b_of(session: Session, year: int, rules: PublicSupportRules,
                  currency: str) -> LedgerScheduleB:
    if currency != rules.schedule_b_currency:
        raise NotAllowed(f"Schedule B's threshold is in {rules.schedule_b_currency}; the "
                         f"reporting currency is {currency}")
    support = public_support(session, year, rules, currency, gift_ids=False)
    result = year_schedule(session, year, rules,
                           special_rule=support.result.meets_support_test)
    ids = [c.donor_id for c in result.contributors]
    donors = {}
    if ids:
        donors = {d: (name, address, kind) for d, name, address, kind in session.execute(
            select(Donor.id, Donor.name, Donor.postal_address, Donor.type)
            .where(Donor.id.in_(ids)))}
    return LedgerScheduleB(schedule=result, currency=currency, donors=donors,
                           public_support_percentage=support.result.percentage_text)
