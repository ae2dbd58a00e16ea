"""Schedule B (Form 990) worksheet, as pure arithmetic: which contributors a year's gifts
put on the schedule, with the cash (Part I, "Person") and non-cash (Part II) parts.

The caller (app.ledger.schedule_b) sums the year in the database and reads, net of refunds,
the gifts of the donors at or over the threshold only; this module
applies the thresholds of policies/public_support.toml ([schedule_b]). Contributors are the
donors who made the gifts, each on their own (Schedule B lists contributors, not the
groups of Schedule A's 2% limit)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from policies.public_support import PublicSupportRules


@dataclass(frozen=True)
class YearGift:
    gift_id: int
    donor_id: int
    #: "cash" or "in_kind" (non-cash).
    kind: str
    amount_minor: int
    description: str | None = None
    received_on: str | None = None


@dataclass
class ScheduleBContributor:
    number: int
    donor_id: int
    total_minor: int
    cash_minor: int
    noncash_minor: int
    cash_gift_ids: list[int] = field(default_factory=list)
    noncash: list[YearGift] = field(default_factory=list)


@dataclass
class ScheduleB:
    year: int
    #: The year's contributions, cash and non-cash (Form 990, Part VIII, line 1h).
    total_contributions_minor: int
    special_rule: bool
    threshold_minor: int
    contributors: list[ScheduleBContributor]


def threshold_minor(total_minor: int, rules: PublicSupportRules, *, special_rule: bool) -> int:
    """The amount from which a contributor is listed: the $5,000 rule, or under the special
    rule the greater of it and the fraction of the year's contributions (rounded up)."""
    threshold = rules.schedule_b_threshold_minor
    if special_rule:
        fraction = rules.schedule_b_special_fraction
        share = -(-total_minor * fraction.numerator // fraction.denominator)
        threshold = max(threshold, share)
    return threshold


def schedule_b(year: int, gifts: Iterable[YearGift], rules: PublicSupportRules, *,
               special_rule: bool, total_minor: int | None = None) -> ScheduleB:
    """special_rule: the organisation meets the 33 1/3% test (it may then use the higher of
    the threshold and the fraction of the year's contributions).

    total_minor: the year's contributions when the caller summed them itself; gifts may then
    be only those of the donors that can be listed (every gift of each such donor)."""
    by_donor: dict[int, list[YearGift]] = {}
    total = 0
    for g in gifts:
        by_donor.setdefault(g.donor_id, []).append(g)
        total += g.amount_minor
    if total_minor is not None:
        total = total_minor
    threshold = threshold_minor(total, rules, special_rule=special_rule)
    listed = []
    for donor_id, own in by_donor.items():
        donor_total = sum(g.amount_minor for g in own)
        if donor_total >= threshold and donor_total > 0:
            cash = [g for g in own if g.kind == "cash" and g.amount_minor > 0]
            noncash = [g for g in own if g.kind != "cash" and g.amount_minor > 0]
            listed.append(ScheduleBContributor(
                number=0, donor_id=donor_id, total_minor=donor_total,
                cash_minor=sum(g.amount_minor for g in cash),
                noncash_minor=sum(g.amount_minor for g in noncash),
                cash_gift_ids=sorted(g.gift_id for g in cash),
                noncash=sorted(noncash, key=lambda g: g.gift_id)))
    listed.sort(key=lambda c: (-c.total_minor, c.donor_id))
    for number, contributor in enumerate(listed, start=1):
        contributor.number = number
    return ScheduleB(year=year, total_contributions_minor=total, special_rule=special_rule,
                     threshold_minor=threshold, contributors=listed)
