"""CSV exports for accounting: donors and gifts, streamed row by row, safe to open in a spreadsheet.

A cell a spreadsheet would read as a formula (a donor named "=HYPERLINK(...)") is
neutralised with a leading apostrophe. Amounts are never negative here: refunds are
their own positive columns, and net = amount - refunded, which the database keeps
>= 0, so no amount ever needs the apostrophe and every amount stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.ledger.search import donors_matching
from models import (
    Appeal,
    Campaign,
    Donor,
    DonorExternalId,
    Fund,
    Gift,
    GiftDesignation,
    Organization,
    Refund,
)
from models.money import format_amount, parse_typed_amount

#: Rows fetched from the database at a time (a server-side cursor on PostgreSQL).
FETCH = 1000
#: Rows written per chunk of the HTTP response.
FLUSH = 500

#: First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula
#: (OWASP's CSV injection list: = + - @ tab CR; and their full-width forms, which some
#: spreadsheet locales accept too).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: object) -> str:
    """A cell as text that no spreadsheet will evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # Leading spaces or newlines do not stop some spreadsheets from seeing the formula.
    if text.lstrip(" \n").startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_chunks(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The CSV text in chunks: a UTF-8 byte order mark (so Excel reads UTF-8), the header,
    then every row, neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([neutralise(h) for h in header])
    pending = 1
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
        pending += 1
        if pending >= FLUSH:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


# --- donors ----------------------------------------------------------------------------------

DONOR_HEADER = ("donor_id", "external_id", "type", "name", "email", "category", "organization_id",
                "organization", "anonymous", "created_at")


@dataclass(frozen=True)
class DonorFilters:
    type: str | None = None
    #: Further WHERE clauses on Donor: the staff donors list's filter or a segment's
    #: (app.ledger.segments.donor_conditions), so the file holds the rows the list shows.
    where: tuple = ()
    #: What `where` says, for the audit entry (the criteria as given, the segment's id).
    described: tuple[tuple[str, object], ...] = ()

    def conditions(self) -> list:
        return [*([Donor.type == self.type] if self.type else []), *self.where]

    def as_dict(self) -> dict:
        return {"type": self.type, **dict(self.described)}


def count_donors(session: Session, filters: DonorFilters) -> int:
    return session.execute(select(func.count(Donor.id)).where(*filters.conditions())).scalar_one()


def donor_rows(session: Session, filters: DonorFilters) -> Iterator[tuple]:
    stmt = (
        select(Donor.id, DonorExternalId.external_id, Donor.type, Donor.name, Donor.email,
               Donor.category, Donor.organization_id, Organization.name, Donor.anonymous,
               Donor.created_at)
        .outerjoin(DonorExternalId, DonorExternalId.donor_id == Donor.id)
        .outerjoin(Organization, Organization.id == Donor.organization_id)
        .where(*filters.conditions())
        .order_by(Donor.id)
        .execution_options(yield_per=FETCH)
    )
    result = session.execute(stmt)
    try:
        for row in result:
            *head, created_at = row
            yield (*head, created_at.isoformat(timespec="seconds"))
    finally:
        result.close()  # a download cut short must not leave the server-side cursor open


# --- gifts -----------------------------------------------------------------------------------

GIFT_HEADER = (
    "gift_id", "received_on", "donor_id", "donor_name", "status", "kind", "purpose", "method",
    "currency", "amount", "refunded", "net_amount",
    "reporting_currency", "reporting_amount", "reporting_refunded", "reporting_net",
    "fx_rate", "fx_source", "external_ref", "stripe_payment_intent_id", "description",
    "created_at",
    # Added with campaigns: the codes of the gift's campaign, appeal and fund, and whether
    # the fund is restricted (accounting keeps restricted money apart).
    "campaign", "appeal", "fund", "fund_restricted",
)


@dataclass(frozen=True)
class GiftFilters:
    """Which gifts: the export page's dates and status, or everything the staff gift list
    filters by (so a list's export holds exactly the rows the list shows)."""

    received_from: date | None = None
    received_to: date | None = None
    status: str | None = None
    kind: str | None = None
    #: A donor's name, e-mail or "#number" (app.ledger.search.donors_matching).
    q: str | None = None
    campaign_id: int | None = None
    fund_id: int | None = None
    #: Reporting amounts as typed, in the reporting currency's major units ("1,000.50");
    #: checked by the caller (app.web.formtools.amount_range_arg).
    amount_min: str | None = None
    amount_max: str | None = None
    reporting_currency: str | None = None

    def conditions(self) -> list:
        conditions = []
        if self.received_from:
            conditions.append(Gift.received_on >= self.received_from)
        if self.received_to:
            conditions.append(Gift.received_on <= self.received_to)
        if self.status:
            conditions.append(Gift.status == self.status)
        if self.kind:
            conditions.append(Gift.kind == self.kind)
        if self.q:
            conditions.append(Gift.donor_id.in_(
                select(Donor.id).where(donors_matching(self.q, by_id=True))))
        designated = [getattr(GiftDesignation, f"{name}_id") == value for name, value in
                      (("campaign", self.campaign_id), ("fund", self.fund_id)) if value]
        if designated:
            conditions.append(Gift.id.in_(select(GiftDesignation.gift_id).where(*designated)))
        if self.amount_min or self.amount_max:
            currency = self.reporting_currency
            if self.amount_min:
                conditions.append(Gift.reporting_amount_minor
                                  >= parse_typed_amount(self.amount_min, currency))
            if self.amount_max:
                conditions.append(Gift.reporting_amount_minor
                                  <= parse_typed_amount(self.amount_max, currency))
        return conditions

    def as_dict(self) -> dict:
        values = {"received_from": self.received_from, "received_to": self.received_to,
                  "status": self.status, "kind": self.kind, "q": self.q,
                  "campaign_id": self.campaign_id, "fund_id": self.fund_id,
                  "amount_min": self.amount_min, "amount_max": self.amount_max}
        # The export page's three keys always (as before); the list's others when given.
        return {k: v for k, v in values.items()
                if v is not None or k in ("received_from", "received_to", "status")}


def count_gifts(session: Session, filters: GiftFilters) -> int:
    return session.execute(select(func.count(Gift.id)).where(*filters.conditions())).scalar_one()


def gift_rows(session: Session, filters: GiftFilters) -> Iterator[tuple]:
    refunds = (
        select(Refund.gift_id, func.sum(Refund.reporting_amount_minor).label("reporting"))
        .group_by(Refund.gift_id).subquery()
    )
    stmt = (
        select(Gift, Donor.name, func.coalesce(refunds.c.reporting, 0), Campaign.code,
               Appeal.code, Fund.code, Fund.restricted)
        .join(Donor, Donor.id == Gift.donor_id)
        .outerjoin(refunds, refunds.c.gift_id == Gift.id)
        .outerjoin(GiftDesignation, GiftDesignation.gift_id == Gift.id)
        .outerjoin(Campaign, Campaign.id == GiftDesignation.campaign_id)
        .outerjoin(Appeal, Appeal.id == GiftDesignation.appeal_id)
        .outerjoin(Fund, Fund.id == GiftDesignation.fund_id)
        .where(*filters.conditions())
        .order_by(Gift.received_on, Gift.id)
        .execution_options(yield_per=FETCH)
    )
    result = session.execute(stmt)
    try:
        for gift, donor_name, refunded, *designation in result:
            yield (*_gift_row(gift, donor_name, int(refunded)), *designation)
            # Rows are only read; dropping each keeps a long export's memory flat.
            session.expunge(gift)
    finally:
        result.close()


def _gift_row(gift: Gift, donor_name: str, reporting_refunded: int) -> tuple:
    """One gift's cells. reporting_refunded must be an int: PostgreSQL's sum() is a Decimal."""
    return (
        gift.id, gift.received_on.isoformat(), gift.donor_id, donor_name, gift.status,
        gift.kind, gift.purpose, gift.method, gift.currency,
        format_amount(gift.amount_minor, gift.currency),
        format_amount(gift.refunded_minor, gift.currency),
        format_amount(gift.amount_minor - gift.refunded_minor, gift.currency),
        gift.reporting_currency,
        format_amount(gift.reporting_amount_minor, gift.reporting_currency),
        format_amount(reporting_refunded, gift.reporting_currency),
        format_amount(gift.reporting_amount_minor - reporting_refunded, gift.reporting_currency),
        gift.fx_rate, gift.fx_source, gift.external_ref, gift.stripe_payment_intent_id,
        gift.description, gift.created_at.isoformat(timespec="seconds"),
    )
