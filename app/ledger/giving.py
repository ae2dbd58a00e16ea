"""The one reader of "accepted cash net of refunds": what a donor gave, what a campaign or
fund raised, what a report year holds.

Giving is a gift that is accepted, is cash (in-kind support is disclosed, not counted),
is in the reporting currency's books (reporting_currency), and counts its reporting amount
less every refund (and reversal) recorded against it, whatever the refund's date: a report
of giving says what the organisation kept. (The compliance windows are different: a refund
counts there only from its own date, app.ledger.windows.)

The donor list (app.web.donors.giving_totals), the donor's giving summary
(app.ledger.profile), the fundraising reports (app.ledger.reports) and campaign and fund
progress (app.ledger.campaigns) all read it here, so their figures agree.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, func, select

from models import Gift, Refund


class NetCash:
    """Accepted cash gifts in `currency`, each net of its refunds.

        cash = NetCash("USD", Gift.donor_id == 7)
        cash.select(func.sum(cash.net)).where(...)

    scope: conditions on Gift that every caller's query applies anyway; they narrow the
    refunds summed to those gifts' (a donor's, a year's), which is most of the query's work
    on a large ledger.
    """

    def __init__(self, currency: str, *scope: ColumnElement[bool]):
        refunded = select(Refund.gift_id, func.sum(Refund.reporting_amount_minor).label("minor"))
        if scope:
            refunded = refunded.join(Gift, Gift.id == Refund.gift_id).where(*scope)
        self._refunded = refunded.group_by(Refund.gift_id).subquery("refunded")
        self.scope = scope
        #: The gift's reporting amount less its refunds (minor units).
        self.net = Gift.reporting_amount_minor - func.coalesce(self._refunded.c.minor, 0)
        #: The gift counts as giving (accepted, cash, in this currency's books).
        self.counted = and_(Gift.status == "accepted", Gift.kind == "cash",
                            Gift.reporting_currency == currency)

    def join(self, query: Select) -> Select:
        """The query (selecting from gift) with each gift's refunds beside it."""
        return query.outerjoin(self._refunded, self._refunded.c.gift_id == Gift.id)

    def select(self, *columns) -> Select:
        """SELECT columns FROM the counted gifts in scope, refunds joined."""
        return self.join(select(*columns).select_from(Gift)).where(self.counted, *self.scope)
