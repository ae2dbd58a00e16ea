"""The public-support test of Form 990, Schedule A, Part II, as pure arithmetic.

A public charity under sections 170(b)(1)(A)(vi) and 509(a)(1) shows broad public support
over five years: its public support (every contribution, each contributor's only up to 2%
of total support) against its total support. The caller (app.ledger.public_support) reads
the contributions from the ledger; this module takes plain facts and returns every figure
with the gifts behind it. No database, no Flask, no clock. Money is integer minor units of
the reporting currency; ratios are Fractions, shown rounded down (never compared rounded).

The numbers come from policies/public_support.toml; docs/public-support.md cites the form
instructions for each rule.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from pathlib import Path

DEFAULT_RULES_FILE = Path(__file__).with_name("public_support.toml")

#: The donor classes the ledger can record (app.ledger.public_support); which of them are
#: unlimited is the rules file's choice.
SUPPORT_CLASSES = ("governmental_unit", "public_charity")


class PublicSupportRulesError(ValueError):
    """A rules file that is incomplete or inconsistent."""


@dataclass(frozen=True)
class PublicSupportRules:
    version: str
    years: int
    donor_limit: Fraction
    unlimited_classes: frozenset[str]
    follow_attribution_bases: frozenset[str]
    count_in_kind: bool
    support_test: Fraction
    facts_and_circumstances_floor: Fraction
    shown_places: int
    #: Schedule B: the general rule's threshold and its currency, and the special rule's
    #: fraction of the year's total contributions.
    schedule_b_threshold_minor: int = 500000
    schedule_b_currency: str = "USD"
    schedule_b_special_fraction: Fraction = Fraction(2, 100)
    #: The dashboard warns when a forecast percentage falls below this.
    forecast_warning_below: Fraction = Fraction(2, 5)


def _fraction(value: object, name: str) -> Fraction:
    try:
        number = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise PublicSupportRulesError(f"{name} must be a fraction such as \"2/100\", "
                                      f"got {value!r}") from None
    if not 0 < number < 1:
        raise PublicSupportRulesError(f"{name} must be between 0 and 1, got {value!r}")
    return number


def parse_rules(text: str) -> PublicSupportRules:
    try:
        data = tomllib.loads(text)
        computation, tests = data["computation"], data["tests"]
        classes = frozenset(computation["unlimited_classes"])
        unknown = classes - set(SUPPORT_CLASSES)
        if unknown:
            raise PublicSupportRulesError(f"unknown unlimited_classes: {sorted(unknown)}")
        years = int(computation["years"])
        if years < 1:
            raise PublicSupportRulesError("years must be at least 1")
        return PublicSupportRules(
            version=str(data["version"]),
            years=years,
            donor_limit=_fraction(computation["donor_limit"], "donor_limit"),
            unlimited_classes=classes,
            follow_attribution_bases=frozenset(computation["follow_attribution_bases"]),
            count_in_kind=bool(computation["count_in_kind"]),
            support_test=_fraction(tests["support_test"], "support_test"),
            facts_and_circumstances_floor=_fraction(tests["facts_and_circumstances_floor"],
                                                    "facts_and_circumstances_floor"),
            shown_places=int(tests["shown_places"]),
            schedule_b_threshold_minor=int(data["schedule_b"]["threshold_minor"]),
            schedule_b_currency=str(data["schedule_b"]["threshold_currency"]),
            schedule_b_special_fraction=_fraction(data["schedule_b"]["special_rule_fraction"],
                                                  "special_rule_fraction"),
            forecast_warning_below=_fraction(data["forecast"]["warning_below"],
                                             "warning_below"),
        )
    except KeyError as missing:
        raise PublicSupportRulesError(f"missing key {missing}") from None


def load_rules(path: Path = DEFAULT_RULES_FILE) -> PublicSupportRules:
    return parse_rules(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Contribution:
    """One contributor's part of one gift, net of refunds, in reporting minor units."""

    gift_id: int
    #: The donor who legally made this part (after attribution).
    contributor_id: int
    year: int
    amount_minor: int
    #: The contributor is a governmental unit or publicly supported charity (unlimited).
    unlimited: bool = False
    #: A reviewer marked the gift an unusual grant: left out of the computation.
    unusual: bool = False


@dataclass(frozen=True)
class DonorSum:
    """A donor's gifts over the five years that are simply the donor's (not split between
    contributors, not unusual grants), net of refunds, summed: the ledger sums them in the
    database, so a million gifts need not be a million objects. Which gifts they are is
    asked of the ledger when a figure is shown (app.ledger.public_support)."""

    contributor_id: int
    amount_minor: int
    #: How many gifts the sum is made of.
    gifts: int
    unlimited: bool = False


@dataclass(frozen=True)
class YearSum:
    """The same gifts summed by year (line 1's part from them)."""

    year: int
    amount_minor: int
    gifts: int


def donor_groups(donor_ids: Iterable[int], links: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Persons treated as one contributor: each donor id -> its group's smallest donor id.

    links: pairs treated as one (a person and their spouse, a company and a company it
    controls); they join transitively, as a family or a group of companies does."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for donor_id in donor_ids:
        find(donor_id)
    for a, b in links:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    return {donor_id: find(donor_id) for donor_id in list(parent)}


@dataclass
class YearFigures:
    year: int
    #: Line 1: gifts, grants and contributions (unusual grants left out).
    contributions_minor: int = 0
    #: The ids of the gifts line 1 sums, where they were given one by one (the ledger fills
    #: them in on demand: app.ledger.public_support), and how many gifts it sums in all.
    gift_ids: list[int] = field(default_factory=list)
    gift_count: int = 0
    #: Unusual grants received this year, left out of every line.
    unusual_minor: int = 0
    unusual_gift_ids: list[int] = field(default_factory=list)


@dataclass
class ContributorFigures:
    """One contributor (a group treated as one) over the five years."""

    group_id: int
    donor_ids: list[int]
    total_minor: int
    #: Line 5: the part above the 2% limit (0 for an unlimited contributor).
    excess_minor: int
    unlimited: bool
    gift_ids: list[int]
    gift_count: int = 0


@dataclass
class PublicSupport:
    tax_year: int
    rules_version: str
    years: list[YearFigures]
    #: Line 1 = line 4 (the ledger holds no tax revenues or free governmental services,
    #: lines 2-3) and = line 11 (nor investment, unrelated-business or other income, 7-10).
    total_support_minor: int
    #: 2% of total support, in minor units rounded down (a larger excess: never flattering).
    donor_limit_minor: int
    contributors: list[ContributorFigures]
    #: Line 5, column (f).
    excess_minor: int
    #: Line 6, column (f).
    public_support_minor: int
    #: Line 14, exact; None when there is no support at all.
    percentage: Fraction | None
    meets_support_test: bool
    meets_facts_and_circumstances_floor: bool
    shown_places: int
    #: How many contributors there are in all: those listed in `contributors` and the
    #: `others` the caller counted without giving them (each alone under the limit).
    contributor_count: int = 0

    @property
    def percentage_text(self) -> str | None:
        return percent_text(self.percentage, self.shown_places)

    @property
    def over_limit(self) -> list[ContributorFigures]:
        return [c for c in self.contributors if c.excess_minor > 0]


def percent_text(ratio: Fraction | None, places: int = 2) -> str | None:
    """"33.33%": rounded down, so a percentage shown as meeting a threshold meets it."""
    if ratio is None:
        return None
    exact = Decimal(ratio.numerator) * 100 / Decimal(ratio.denominator)
    return f"{exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)}%"


def compute(tax_year: int, contributions: Iterable[Contribution],
            groups: Mapping[int, int], rules: PublicSupportRules,
            donor_sums: Iterable[DonorSum] = (), year_sums: Iterable[YearSum] = (),
            others: int = 0) -> PublicSupport:
    """Part II for tax_year from its contributions (those outside the five years are
    ignored). groups: donor id -> group id (donor_groups); a donor missing is its own.
    donor_sums and year_sums: the same gifts' parts summed per donor over the five years and
    per year, instead of one by one (both or neither; never the same gift twice). others:
    contributors left out of donor_sums because none can have an excess (each alone, not
    unlimited, at or under 2% of line 1 before refunds): counted, never listed."""
    first = tax_year - rules.years + 1
    years = {year: YearFigures(year) for year in range(first, tax_year + 1)}
    # A gift split between contributors is one gift in its year: sets, sorted at the end.
    gift_ids: dict[int, set[int]] = {year: set() for year in years}
    unusual_ids: dict[int, set[int]] = {year: set() for year in years}
    # Gifts given in sums are counted; those given one by one are collected, then counted.
    summed: dict[int, int] = {year: 0 for year in years}
    totals: dict[tuple[int, bool], int] = {}
    members: dict[tuple[int, bool], set[int]] = {}
    gifts_of: dict[tuple[int, bool], set[int]] = {}
    summed_of: dict[tuple[int, bool], int] = {}
    for c in contributions:
        figures = years.get(c.year)
        if figures is None:
            continue
        if c.unusual:
            figures.unusual_minor += c.amount_minor
            unusual_ids[c.year].add(c.gift_id)
            continue
        figures.contributions_minor += c.amount_minor
        gift_ids[c.year].add(c.gift_id)
        # An unlimited contributor is kept apart from any group it belongs to: its gifts are
        # not a person's for line 5, and must not use up a related person's 2%.
        key = (groups.get(c.contributor_id, c.contributor_id), c.unlimited)
        totals[key] = totals.get(key, 0) + c.amount_minor
        members.setdefault(key, set()).add(c.contributor_id)
        gifts_of.setdefault(key, set()).add(c.gift_id)
    for y in year_sums:
        figures = years.get(y.year)
        if figures is not None:
            figures.contributions_minor += y.amount_minor
            summed[y.year] += y.gifts
    for d in donor_sums:
        key = (groups.get(d.contributor_id, d.contributor_id), d.unlimited)
        totals[key] = totals.get(key, 0) + d.amount_minor
        members.setdefault(key, set()).add(d.contributor_id)
        gifts_of.setdefault(key, set())
        summed_of[key] = summed_of.get(key, 0) + d.gifts

    total = sum(y.contributions_minor for y in years.values())
    limit = total * rules.donor_limit.numerator // rules.donor_limit.denominator
    contributors = []
    for key in sorted(totals, key=lambda k: (-totals[k], k)):
        group_id, unlimited = key
        excess = 0 if unlimited else max(0, totals[key] - limit)
        contributors.append(ContributorFigures(
            group_id=group_id, donor_ids=sorted(members[key]), total_minor=totals[key],
            excess_minor=excess, unlimited=unlimited, gift_ids=sorted(gifts_of[key]),
            gift_count=summed_of.get(key, 0) + len(gifts_of[key])))
    excess_total = sum(c.excess_minor for c in contributors)
    public = total - excess_total
    ratio = Fraction(public, total) if total > 0 else None
    for year, figures in years.items():
        figures.gift_ids = sorted(gift_ids[year])
        figures.gift_count = summed[year] + len(gift_ids[year])
        figures.unusual_gift_ids = sorted(unusual_ids[year])
    return PublicSupport(
        tax_year=tax_year, rules_version=rules.version,
        years=[years[y] for y in sorted(years)], total_support_minor=total,
        donor_limit_minor=limit, contributors=contributors, excess_minor=excess_total,
        public_support_minor=public, percentage=ratio,
        meets_support_test=ratio is not None and ratio >= rules.support_test,
        meets_facts_and_circumstances_floor=(
            ratio is not None and ratio >= rules.facts_and_circumstances_floor),
        shown_places=rules.shown_places,
        contributor_count=len(contributors) + others,
    )
