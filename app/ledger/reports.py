"""Fundraising reports: who gave when, who came back, who lapsed, and how gifts are spread.

Everything starts from one aggregate: each donor's accepted cash gifts, net of their
refunds, per calendar year, in the reporting currency (donor_years). The reports are plain
arithmetic on that table, so they agree with each other and with the donor pages
(app.ledger.profile counts the same gifts). A gift counts for the donor who gave it
(gift.donor_id): soft credits (a donor-advised fund's advisor) are not added here.

Terms, as fundraising teams use them, for a report year Y:
- LYBUNT, "last year but unfortunately not this": gave in Y-1, nothing in Y;
- SYBUNT, "some year but unfortunately not this": gave in some year before Y-1, nothing in
  Y-1 or Y (LYBUNT donors are not repeated here);
- retained: gave in Y-1 and in Y; retention rate = retained / donors of Y-1;
- new (acquired): first gift ever in Y; recaptured: gave in Y, not in Y-1, but before;
- upgraded / downgraded / same: retained donors whose total in Y is more / less / equal;
- lapsed: the LYBUNT donors (they gave last year and have not come back this year).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from sqlalchemy import extract, func, select
from sqlmodel import Session

from app.ledger import campaigns
from app.ledger.giving import NetCash
from models import Donor, Gift

#: Gift-size pyramid bands by a donor's total in the year, in major units of the reporting
#: currency: (lower bound inclusive, label). The last band is open-ended.
PYRAMID_BANDS = (
    (0, "under 100"), (100, "100 – 499"), (500, "500 – 999"), (1_000, "1,000 – 4,999"),
    (5_000, "5,000 – 24,999"), (25_000, "25,000 – 99,999"), (100_000, "100,000 and more"),
)


def donor_years(session: Session, currency: str, donors=None) -> dict[int, dict[int, int]]:
    """donor id -> {year: net accepted cash in minor units}, for years with a positive total.
    One grouped query: the ledger's accepted cash gifts (ix_gift_donor_status_received_on)
    with their refunds summed per gift (app.ledger.giving). `donors`: a SELECT of donor ids
    (a segment's members) to count only theirs."""
    cash = NetCash(currency, *_only(donors))
    year = extract("year", Gift.received_on)
    rows = session.execute(
        cash.select(Gift.donor_id, year, func.sum(cash.net)).group_by(Gift.donor_id, year)
    ).all()
    years: dict[int, dict[int, int]] = defaultdict(dict)
    for donor_id, y, total in rows:
        if total and int(total) > 0:  # a gift refunded in full is not giving
            years[donor_id][int(y)] = int(total)
    return dict(years)


@dataclass(frozen=True)
class YearFigures:
    """One report year's donor counts and totals (minor units of the reporting currency)."""

    year: int
    donors: int
    total_minor: int
    new: int
    retained: int
    recaptured: int
    #: Donors of the year before who gave nothing this year (the LYBUNT count).
    lapsed: int
    upgraded: int
    downgraded: int
    same: int
    #: retained / donors of the year before; None when there were none.
    retention: Fraction | None


@dataclass
class Reports:
    """Every report for a year, from one donor_years table."""

    year: int
    currency: str
    by_year: list[YearFigures]
    lybunt: list[tuple[int, int, int]] = field(default_factory=list)
    sybunt: list[tuple[int, int, int]] = field(default_factory=list)
    first_time: list[tuple[int, int]] = field(default_factory=list)
    #: (label, donors, total_minor) per band, lowest first.
    pyramid: list[tuple[str, int, int]] = field(default_factory=list)
    #: (month 1..12, gifts, total_minor) for the report year.
    by_month: list[tuple[int, int, int]] = field(default_factory=list)


def year_figures(years: dict[int, dict[int, int]], y: int) -> YearFigures:
    donors = new = retained = recaptured = lapsed = up = down = same = before = 0
    total = 0
    for per_year in years.values():
        this, last = per_year.get(y), per_year.get(y - 1)
        if last is not None:
            before += 1
            if this is None:
                lapsed += 1
        if this is None:
            continue
        donors += 1
        total += this
        if last is not None:
            retained += 1
            up += this > last
            down += this < last
            same += this == last
        elif min(per_year) < y:
            recaptured += 1
        else:
            new += 1
    return YearFigures(y, donors, total, new, retained, recaptured, lapsed, up, down, same,
                       Fraction(retained, before) if before else None)


def _only(donors) -> list:
    return [] if donors is None else [Gift.donor_id.in_(donors)]


def build(session: Session, year: int, currency: str, exponent: int,
          history_years: int = 5, donors=None) -> Reports:
    """Every report for `year`, with `history_years` of retention and acquisition before it;
    `donors` (a SELECT of donor ids, a segment's members) limits them to those donors."""
    years = donor_years(session, currency, donors)
    reports = Reports(year, currency, [year_figures(years, y)
                                       for y in range(year - history_years + 1, year + 1)])
    unit = 10 ** exponent
    bands = [[label, 0, 0] for _low, label in PYRAMID_BANDS]
    for donor_id, per_year in years.items():
        this, last = per_year.get(year), per_year.get(year - 1)
        lifetime = sum(v for y, v in per_year.items() if y <= year)
        if this is None and last is not None:
            reports.lybunt.append((donor_id, last, lifetime))
        elif this is None and last is None and any(y < year - 1 for y in per_year):
            latest = max(y for y in per_year if y < year - 1)
            reports.sybunt.append((donor_id, latest, lifetime))
        if this is not None:
            if min(per_year) == year:
                reports.first_time.append((donor_id, this))
            band = max(i for i, (low, _l) in enumerate(PYRAMID_BANDS) if this >= low * unit)
            bands[band][1] += 1
            bands[band][2] += this
    reports.lybunt.sort(key=lambda r: (-r[1], r[0]))
    reports.sybunt.sort(key=lambda r: (-r[1], -r[2], r[0]))
    reports.first_time.sort(key=lambda r: (-r[1], r[0]))
    reports.pyramid = [tuple(b) for b in bands]
    reports.by_month = giving_by_month(session, year, currency, donors)
    return reports


def giving_by_month(session: Session, year: int, currency: str,
                    donors=None) -> list[tuple[int, int, int]]:
    """(month, accepted cash gifts, net total) for each month of the year, in the reporting
    currency; months without gifts are there with zeros."""
    cash = NetCash(currency, Gift.received_on >= date(year, 1, 1),
                   Gift.received_on < date(year + 1, 1, 1), *_only(donors))
    month = extract("month", Gift.received_on)
    rows = dict((int(m), (int(n), int(t))) for m, n, t in session.execute(
        cash.select(month, func.count(), func.sum(cash.net))
        .where(cash.net > 0)  # a gift refunded in full is not a gift of the month
        .group_by(month)).all())
    return [(m, *rows.get(m, (0, 0))) for m in range(1, 13)]


def donor_names(session: Session, ids) -> dict[int, tuple[str, str | None, bool]]:
    """id -> (name, e-mail, do not contact) for the donors a report lists: a call list must
    say who asked not to be contacted."""
    ids = list(ids)
    names: dict[int, tuple[str, str | None, bool]] = {}
    for start in range(0, len(ids), 1000):  # portable IN lists of bounded size
        chunk = ids[start:start + 1000]
        names.update({i: (n, e, bool(q)) for i, n, e, q in session.execute(
            select(Donor.id, Donor.name, Donor.email, Donor.do_not_contact)
            .where(Donor.id.in_(chunk)))})
    return names


@dataclass(frozen=True)
class DesignationRow:
    """One campaign, appeal or fund in a year's report; id None: the giving naming none."""

    id: int | None
    code: str
    name: str
    gifts: int
    donors: int
    total_minor: int
    goal_minor: int | None = None
    #: Funds: money held to the donor's purpose, reported apart.
    restricted: bool = False


@dataclass
class DesignationReport:
    """A year's giving by campaign, by appeal and by fund (accepted cash net of refunds)."""

    year: int
    currency: str
    #: kind ("campaign", "appeal", "fund") -> rows, largest first, "none named" last.
    rows: dict[str, list[DesignationRow]]

    def restricted_minor(self) -> int:
        return sum(r.total_minor for r in self.rows["fund"] if r.restricted)

    def unrestricted_minor(self) -> int:
        """Everything else: unrestricted funds and giving that names no fund."""
        return sum(r.total_minor for r in self.rows["fund"] if not r.restricted)


def by_designation(session: Session, year: int, currency: str) -> DesignationReport:
    """Giving received in the calendar year, by campaign, appeal and fund: two grouped
    queries per kind (those named, and the rest)."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    rows: dict[str, list[DesignationRow]] = {}
    for kind in campaigns.MODELS:
        named = [DesignationRow(p.id, p.code, p.name, p.gifts, p.donors, p.raised_minor,
                                p.goal_minor, p.restricted)
                 for p in campaigns.progress(session, kind, currency, start=start, end=end)
                 if p.gifts]
        named.sort(key=lambda r: (-r.total_minor, r.code))
        total, gifts = campaigns.undesignated(session, kind, currency, start=start, end=end)
        if gifts:
            named.append(DesignationRow(None, "", f"No {kind} named", gifts, 0, total))
        rows[kind] = named
    return DesignationReport(year, currency, rows)
