"""Arithmetic of the lab-employee share, headroom, text rendering and affiliation dating."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policies import (
    GiftFacts,
    below_cap,
    evaluate,
    headroom,
    lab_affiliations,
    lab_employee_minor,
    percent_text,
    share,
    share_text,
)
from policies.share import affiliation_counts, lab_employee_fraction
from tests.policies.policy_builders import (
    GIFT_DAY,
    days,
    funding,
    gift,
    job,
    lab_employee,
    lab_org,
    person,
    policy,
    window,
)

HALF = Decimal("0.5")
CAPS = [Decimal("0.5"), Decimal("0.25"), Decimal("0.9")]
PROPERTY = settings(max_examples=300, deadline=None, database=None)

# --- share and below_cap ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "total", "expected"),
    [
        pytest.param(0, 0, Fraction(0), id="empty window has share 0"),
        pytest.param(0, 100, Fraction(0), id="no lab money"),
        pytest.param(4_000, 10_000, Fraction(2, 5), id="40%"),
        pytest.param(1, 3, Fraction(1, 3), id="exact third"),
        pytest.param(7, 7, Fraction(1), id="all lab money"),
    ],
)
def test_share(lab, total, expected):
    assert share(lab, total) == expected


@pytest.mark.parametrize(
    ("lab", "total", "cap", "expected"),
    [
        pytest.param(0, 0, HALF, True, id="empty window is below"),
        pytest.param(1, 0, HALF, False, id="lab money with no total is not below"),
        pytest.param(4_999, 10_000, HALF, True, id="49.99% below 50%"),
        pytest.param(5_000, 10_000, HALF, False, id="exactly 50% is not below"),
        pytest.param(5_001, 10_000, HALF, False, id="50.01% is not below"),
        pytest.param(1, 1, HALF, False, id="100% is not below"),
        pytest.param(0, 1, HALF, True, id="0% is below"),
        pytest.param(1, 4, Decimal("0.25"), False, id="exactly 25% at cap 25%"),
        pytest.param(8, 9, Decimal("0.9"), True, id="88.8% below 90%"),
        pytest.param(9, 10, Decimal("0.9"), False, id="exactly 90% at cap 90%"),
    ],
)
def test_below_cap(lab, total, cap, expected):
    assert below_cap(lab, total, cap) is expected


# --- headroom ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "total", "cap", "expected"),
    [
        pytest.param(4_000, 10_000, HALF, 1_999, id="L4000 T10000 -> 1999"),
        pytest.param(0, 10_000, HALF, 9_999, id="no lab money -> T-1"),
        pytest.param(0, 0, HALF, 0, id="empty window -> 0"),
        pytest.param(5_000, 10_000, HALF, 0, id="at the cap -> 0"),
        pytest.param(6_000, 10_000, HALF, 0, id="over the cap -> 0"),
        pytest.param(4_999, 10_000, HALF, 1, id="one unit under -> room of 1"),
        pytest.param(0, 1, HALF, 0, id="T=1: a gift of 1 reaches 50%"),
        pytest.param(0, 2, HALF, 1, id="T=2: a gift of 1 is 33%"),
        pytest.param(0, 100, Decimal("0.25"), 33, id="cap 25%: 33/133 ok, 34/134 not"),
        pytest.param(0, 10, Decimal("0.9"), 89, id="cap 90%: 89/99 ok, 90/100 not"),
        pytest.param(100, 1_000, Decimal("0.25"), 199, id="cap 25% with lab 100"),
    ],
)
def test_headroom_known_values(lab, total, cap, expected):
    x = headroom(lab, total, cap)
    assert x == expected
    assert below_cap(lab + x, total + x, cap) is below_cap(lab, total, cap)
    assert not below_cap(lab + x + 1, total + x + 1, cap)


@st.composite
def lab_and_total(draw, max_total=10**12):
    total = draw(st.integers(min_value=0, max_value=max_total))
    lab = draw(st.integers(min_value=0, max_value=total))
    return lab, total


@PROPERTY
@given(totals=lab_and_total(), cap=st.sampled_from(CAPS))
@example(totals=(0, 0), cap=HALF)
@example(totals=(5_000, 10_000), cap=HALF)
@example(totals=(4_999, 10_000), cap=HALF)
@example(totals=(0, 1), cap=HALF)
@example(totals=(1, 1), cap=Decimal("0.9"))
def test_headroom_is_the_largest_acceptable_gift(totals, cap):
    lab, total = totals
    x = headroom(lab, total, cap)

    assert x >= 0
    # One unit more than the headroom always breaks the cap ...
    assert not below_cap(lab + x + 1, total + x + 1, cap)
    if below_cap(lab, total, cap):
        # ... and when the window is below the cap, a gift of exactly the headroom is fine
        # (for x == 0 this says: the window is fine, but even 1 more unit would break it).
        assert below_cap(lab + x, total + x, cap)
    else:
        # A window already at or over the cap has no room at all.
        assert x == 0


@PROPERTY
@given(totals=lab_and_total(max_total=60), cap=st.sampled_from(CAPS))
def test_headroom_matches_brute_force(totals, cap):
    lab, total = totals
    acceptable = [x for x in range(0, 2_000) if below_cap(lab + x, total + x, cap)]
    assert headroom(lab, total, cap) == (max(acceptable) if acceptable else 0)


@PROPERTY
@given(totals=lab_and_total(max_total=10**9))
def test_engine_accepts_the_headroom_and_rejects_one_more(totals):
    lab, total = totals
    money = funding(window(total, lab))
    x = headroom(lab, total, HALF)
    if x > 0:
        # Accepted, unless it is large enough for a reviewer (the large_gift rule).
        large = x >= policy().settings["large_gift"]["threshold_minor"]
        assert evaluate(policy(), gift(lab_employee(), x), money).outcome == (
            "hold" if large else "accept")
    assert evaluate(policy(), gift(lab_employee(), x + 1), money).outcome == "reject"


# --- share_text: six places, truncated -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(share(1, 3), "0.333333", id="1/3"),
        pytest.param(share(2, 3), "0.666666", id="2/3 truncated, not 0.666667"),
        pytest.param(share(499_999_999, 1_000_000_000), "0.499999", id="just under half"),
        pytest.param(share(5, 10), "0.500000", id="half"),
        pytest.param(share(0, 0), "0.000000", id="empty"),
        pytest.param(share(0, 5), "0.000000", id="zero"),
        pytest.param(share(3, 3), "1.000000", id="whole"),
        pytest.param(share(1, 1_000_000), "0.000001", id="one millionth"),
        pytest.param(share(999_999, 1_000_000_000), "0.000999", id="tiny truncated"),
        pytest.param(Fraction(10**30 - 1, 2 * 10**30), "0.499999",
                     id="huge just-under-half still truncated"),
    ],
)
def test_share_text(value, text):
    assert share_text(value) == text


@PROPERTY
@given(num=st.integers(min_value=0), den=st.integers(min_value=1))
@example(num=10**30 - 1, den=2 * 10**30)
@example(num=2 * 10**40 - 1, den=3 * 10**40)
def test_share_text_never_rounds_up(num, den):
    value = Fraction(num, den)
    if value > 1:
        value = 1 / value
    text = share_text(value)
    assert re.fullmatch(r"[01]\.\d{6}", text)
    shown = Fraction(Decimal(text))
    assert shown <= value < shown + Fraction(1, 10**6)


# --- percent_text: truncated, trailing zeros dropped ------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        pytest.param(Fraction(487, 1000), 1, "48.7%", id="0.487"),
        pytest.param(Fraction(1, 2), 1, "50%", id="half, no .0"),
        pytest.param(Decimal("0.50"), 1, "50%", id="Decimal cap"),
        pytest.param(Decimal("0.25"), 1, "25%", id="Decimal quarter"),
        pytest.param(Fraction(4_999, 10_000), 1, "49.9%", id="49.99 truncated to 49.9"),
        pytest.param(Fraction(49_999, 100_000), 2, "49.99%", id="two places"),
        pytest.param(Fraction(999_999, 2_000_000), 1, "49.9%",
                     id="49.99995 never reads as 50"),
        pytest.param(Fraction(2, 3), 1, "66.6%", id="2/3 truncated"),
        pytest.param(Fraction(2, 3), 0, "66%", id="2/3 no places"),
        pytest.param(Fraction(1, 8), 3, "12.5%", id="trailing zeros stripped"),
        pytest.param(Fraction(0), 1, "0%", id="zero"),
        pytest.param(Fraction(1), 1, "100%", id="whole"),
        pytest.param(Fraction(1, 10), 1, "10%", id="ten percent keeps its zero"),
        pytest.param(Fraction(10**30 - 1, 2 * 10**30), 1, "49.9%",
                     id="huge just-under-half still truncated"),
    ],
)
def test_percent_text(value, places, text):
    assert percent_text(value, places) == text


@PROPERTY
@given(totals=lab_and_total(max_total=10**40).filter(lambda t: t[1] > 0),
       places=st.integers(0, 4))
@example(totals=(10**30 - 1, 2 * 10**30), places=1)
def test_percent_text_never_rounds_up(totals, places):
    lab, total = totals
    value = Fraction(lab, total)
    text = percent_text(value, places)
    assert text.endswith("%")
    shown = Fraction(Decimal(text[:-1]))
    assert shown <= value * 100 < shown + Fraction(1, 10**places)


# --- affiliations and the cooling-off period ---------------------------------------------


@pytest.mark.parametrize(
    ("affiliation", "counts"),
    [
        pytest.param(job(), True, id="current job"),
        pytest.param(job(start=GIFT_DAY), True, id="starts on the gift date"),
        pytest.param(job(start=GIFT_DAY + days(1)), False, id="starts the day after"),
        pytest.param(job(start=GIFT_DAY + days(1), end=GIFT_DAY + days(90)), False,
                     id="future job with an end date"),
        pytest.param(job(end=GIFT_DAY), True, id="ends on the gift date"),
        pytest.param(job(end=GIFT_DAY + days(10)), True, id="ends after the gift date"),
        pytest.param(job(end=GIFT_DAY - days(1)), True, id="ended yesterday"),
        pytest.param(job(end=GIFT_DAY - days(364)), True, id="ended 364 days before"),
        pytest.param(job(end=GIFT_DAY - days(365)), False, id="ended 365 days before"),
        pytest.param(job(end=GIFT_DAY - days(366)), False, id="ended 366 days before"),
    ],
)
def test_affiliation_counts_with_default_cooling_off(affiliation, counts):
    assert affiliation_counts(affiliation, GIFT_DAY, 365) is counts


@pytest.mark.parametrize("cooling_off", [1, 30, 365, 730])
def test_cooling_off_boundary_follows_the_setting(cooling_off):
    assert affiliation_counts(job(end=GIFT_DAY - days(cooling_off - 1)), GIFT_DAY, cooling_off)
    assert not affiliation_counts(job(end=GIFT_DAY - days(cooling_off)), GIFT_DAY, cooling_off)


def test_cooling_off_spans_a_leap_day():
    # 2028-02-29 exists: 365 days before 2028-12-31 is 2028-01-01, not 2027-12-31.
    on = GIFT_DAY.replace(year=2028, month=12, day=31)
    assert not affiliation_counts(job(end=on.replace(month=1, day=1)), on, 365)
    assert affiliation_counts(job(end=on.replace(month=1, day=2)), on, 365)


def test_lab_affiliations_only_covered_and_counting():
    current = job("Lab A")
    cooling_off = job("Lab B", end=GIFT_DAY - days(364))
    ended = job("Lab C", end=GIFT_DAY - days(365))
    outside = job("Bakery Inc", covered=False)
    who = person("Mixed Career", current, cooling_off, ended, outside)
    assert lab_affiliations(who, GIFT_DAY, 365) == [current, cooling_off]


def test_lab_affiliations_of_an_organisation_are_empty():
    assert lab_affiliations(lab_org(), GIFT_DAY, 365) == []


# --- lab-employee part of a gift ---------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(gift(lab_employee(), 1_000), 1_000, id="lab employee: all of it"),
        pytest.param(gift(person(), 1_000), 0, id="ordinary donor: none"),
        pytest.param(gift(lab_org(), 1_000), 0, id="lab itself is not a lab employee"),
        pytest.param(gift(lab_employee(), 1_000, kind="in_kind"), 0, id="in-kind: none"),
        pytest.param(gift(person(), 1_001, attributions=[
            lab_employee(fraction=Fraction(1, 2)), person(fraction=Fraction(1, 2))]),
            501, id="joint 1/2 of 1001 rounds up"),
        pytest.param(gift(person(), 100, attributions=[
            lab_employee(fraction=Fraction(1, 3)), person(fraction=Fraction(2, 3))]),
            34, id="joint 1/3 of 100 rounds up"),
        pytest.param(gift(person(), 90, attributions=[
            lab_employee(fraction=Fraction(1, 3)), person(fraction=Fraction(2, 3))]),
            30, id="joint 1/3 of 90 exact"),
        pytest.param(gift(person(), 100, attributions=[
            lab_employee(fraction=Fraction(1, 2)),
            lab_employee("Second Employee", donor_id=8, fraction=Fraction(1, 2))]),
            100, id="two lab employees sharing"),
        pytest.param(gift(lab_employee(), 1_000, attributions=[person()]), 0,
                     id="attributions replace the payer"),
        pytest.param(gift(person("DAF"), 1_000, attributions=[lab_employee()]), 1_000,
                     id="attributed to a lab employee"),
        pytest.param(gift(person(), 1_000, on=GIFT_DAY, attributions=[
            person("Left Long Ago", job(end=GIFT_DAY - days(365)))]), 0,
                     id="former employee past cooling-off"),
    ],
)
def test_lab_employee_minor(facts, expected):
    assert lab_employee_minor(facts, 365) == expected


def test_lab_employee_fraction_sums_lab_parties():
    facts = gift(person(), 100, attributions=[
        lab_employee(fraction=Fraction(1, 4)),
        lab_employee("Second Employee", donor_id=8, fraction=Fraction(1, 4)),
        person(fraction=Fraction(1, 2)),
    ])
    assert lab_employee_fraction(facts, 365) == Fraction(1, 2)


def test_lab_employee_fraction_of_a_gift_with_no_parties():
    facts = GiftFacts(received_on=GIFT_DAY, amount_minor=100, currency="USD")
    assert facts.parties == ()
    assert lab_employee_fraction(facts, 365) == 0
    assert lab_employee_minor(facts, 365) == 0
