"""policies.public_support: the Part II arithmetic on plain facts, no database."""

from __future__ import annotations

from fractions import Fraction

import pytest

from policies.public_support import (
    Contribution,
    PublicSupportRulesError,
    compute,
    donor_groups,
    load_rules,
    parse_rules,
    percent_text,
)
from policies.schedule_b import YearGift, schedule_b

RULES = load_rules()


def c(gift_id, donor, year, amount, **kw) -> Contribution:
    return Contribution(gift_id=gift_id, contributor_id=donor, year=year, amount_minor=amount,
                        **kw)


def test_the_rules_file_holds_the_form_numbers():
    assert RULES.years == 5
    assert RULES.donor_limit == Fraction(2, 100)
    assert RULES.support_test == Fraction(1, 3)
    assert RULES.facts_and_circumstances_floor == Fraction(1, 10)
    assert RULES.unlimited_classes == {"governmental_unit", "public_charity"}


@pytest.mark.parametrize("change, message", [
    (("donor_limit = \"2/100\"", "donor_limit = \"2\""), "between 0 and 1"),
    (("donor_limit = \"2/100\"", "donor_limit = \"two\""), "fraction"),
    (("years = 5", "years = 0"), "at least 1"),
    (("\"governmental_unit\", ", "\"church\", "), "unknown unlimited_classes"),
    (("support_test = \"1/3\"\n", ""), "support_test"),
])
def test_a_broken_rules_file_is_refused(change, message):
    text = (load_rules.__globals__["DEFAULT_RULES_FILE"]).read_text()
    old, new = change
    assert old in text
    with pytest.raises(PublicSupportRulesError, match=message):
        parse_rules(text.replace(old, new, 1))


def test_groups_join_transitively_and_keep_the_smallest_id():
    groups = donor_groups([1, 2, 3, 4, 5], [(3, 2), (4, 3)])
    assert groups == {1: 1, 2: 2, 3: 2, 4: 2, 5: 5}


# (contributions, groups) -> (total, limit, excess, public, percentage shown, 33 1/3%, 10%)
CASES = {
    "one donor is all the support: only 2% of it is public": (
        [c(1, 1, 2025, 1_000_00)], {},
        (1_000_00, 20_00, 980_00, 20_00, "2.00%", False, False)),
    "fifty equal donors: each exactly at the limit, nothing excess": (
        [c(i, i, 2024, 100_00) for i in range(50)], {},
        (5_000_00, 100_00, 0, 5_000_00, "100.00%", True, True)),
    "a couple treated as one: their gifts together pass the limit": (
        [c(1, 1, 2022, 60_00), c(2, 2, 2023, 60_00)] + [c(10 + i, 10 + i, 2024, 8_80)
                                                         for i in range(100)],
        {2: 1},
        (1_000_00, 20_00, 100_00, 900_00, "90.00%", True, True)),
    "the same two not linked: each is limited on its own": (
        [c(1, 1, 2022, 60_00), c(2, 2, 2023, 60_00)] + [c(10 + i, 10 + i, 2024, 8_80)
                                                         for i in range(100)],
        {},
        (1_000_00, 20_00, 80_00, 920_00, "92.00%", True, True)),
    "a governmental unit is not limited": (
        [c(1, 1, 2025, 900_00, unlimited=True), c(2, 2, 2025, 100_00)], {},
        (1_000_00, 20_00, 80_00, 920_00, "92.00%", True, True)),
    "an unusual grant is out of both sides": (
        [c(1, 1, 2025, 9_000_00, unusual=True)] + [c(10 + i, 10 + i, 2024, 100_00)
                                                   for i in range(50)], {},
        (5_000_00, 100_00, 0, 5_000_00, "100.00%", True, True)),
    "gifts outside the five years are ignored": (
        [c(1, 1, 2020, 9_000_00), c(2, 2, 2026, 9_000_00), c(3, 3, 2021, 100_00)], {},
        (100_00, 2_00, 98_00, 2_00, "2.00%", False, False)),
    "shown as 33.33% but below a third: the test fails (compared exactly)": (
        # total 319.16, limit floor(6.3832) = 6.38, public 100.00 + 6.38 = 106.38
        [c(1, 1, 2025, 219_16)] + [c(2 + i, 2 + i, 2025, 5_00) for i in range(20)], {},
        (319_16, 6_38, 212_78, 106_38, "33.33%", False, True)),
    "nothing at all": ([], {}, (0, 0, 0, 0, None, False, False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_part_ii_decision_table(name):
    contributions, groups, expected = CASES[name]
    r = compute(2025, contributions, groups, RULES)
    got = (r.total_support_minor, r.donor_limit_minor, r.excess_minor, r.public_support_minor,
           r.percentage_text, r.meets_support_test, r.meets_facts_and_circumstances_floor)
    assert got == expected
    assert r.public_support_minor == r.total_support_minor - sum(
        x.excess_minor for x in r.contributors)


def test_percentages_are_shown_rounded_down():
    assert percent_text(Fraction(1, 3)) == "33.33%"
    assert percent_text(Fraction(2, 3)) == "66.66%"
    assert percent_text(Fraction(1, 10), places=1) == "10.0%"
    assert percent_text(None) is None


def test_every_figure_names_its_gifts():
    r = compute(2025, [c(1, 1, 2025, 500_00), c(2, 2, 2024, 500_00),
                       c(3, 1, 2023, 100_00), c(4, 3, 2025, 50_00, unusual=True)], {2: 1}, RULES)
    years = {y.year: y for y in r.years}
    assert years[2025].gift_ids == [1] and years[2025].unusual_gift_ids == [4]
    assert years[2024].gift_ids == [2] and years[2023].gift_ids == [3]
    (group,) = r.contributors
    assert group.donor_ids == [1, 2] and group.gift_ids == [1, 2, 3]


# --- Schedule B ----------------------------------------------------------------------------

def yg(gift_id, donor, amount, kind="cash") -> YearGift:
    return YearGift(gift_id=gift_id, donor_id=donor, kind=kind, amount_minor=amount)


@pytest.mark.parametrize("special, listed, threshold", [
    # total 1,000,000.00: the special rule's 2% is 20,000.00, above $5,000. Donor 3 gives
    # exactly $5,000 (listed under the general rule), donor 4 a cent less (never listed).
    (False, [(1, 600_000_00), (2, 380_000_00), (5, 10_000_01), (3, 5_000_00)], 5_000_00),
    (True, [(1, 600_000_00), (2, 380_000_00)], 20_000_00),
])
def test_schedule_b_general_and_special_rule(special, listed, threshold):
    gifts = [yg(1, 1, 600_000_00), yg(2, 2, 300_000_00), yg(3, 2, 80_000_00, "in_kind"),
             yg(4, 3, 2_500_00), yg(5, 3, 2_500_00), yg(6, 4, 4_999_99), yg(7, 5, 10_000_01)]
    result = schedule_b(2025, gifts, RULES, special_rule=special)
    assert result.threshold_minor == threshold
    assert [(c.donor_id, c.total_minor) for c in result.contributors] == listed
    two = next(c for c in result.contributors if c.donor_id == 2)
    assert (two.cash_minor, two.noncash_minor, two.cash_gift_ids) == (300_000_00, 80_000_00, [2])
    assert [g.gift_id for g in two.noncash] == [3]
    assert [c.number for c in result.contributors] == list(range(1, len(listed) + 1))


def test_schedule_b_special_threshold_never_below_the_general_one():
    result = schedule_b(2025, [yg(1, 1, 10_000_00)], RULES, special_rule=True)
    assert result.threshold_minor == 5_000_00  # 2% of 10,000 is 200
