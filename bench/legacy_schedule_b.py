"""Schedule B's reader before it summed in the database (issue 16), kept verbatim for the
bench and for tests/ledger/test_schedule_b_aggregate.py, which check that the new reader
(app.ledger.schedule_b) lists the same contributors with the same figures: every accepted
gift of the year, one row each, net of refunds dated on or before the year's last day."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from models import Gift, Refund
from policies.schedule_b import YearGift


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
