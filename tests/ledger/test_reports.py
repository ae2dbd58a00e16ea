"""Fundraising reports (app/ledger/reports.py) on a small ledger whose figures are worked out
by hand below, recorded through the API on both databases."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from app.ledger import reports
from tests.builders import gift, ok, person

Y = date.today().year


@pytest.fixture
def ledger(api):
    """Who gave what (USD, reporting currency), year by year:

    A: Y-1 100, Y 150 (retained, upgraded)      B: Y-1 200, Y 50 (retained, downgraded)
    C: Y-3 40, Y-1 300 (LYBUNT: 300, lifetime 340)
    D: Y-3 500 (SYBUNT: last gave Y-3)           E: Y 1,000 (new, first-time)
    F: Y-2 70, Y 30 (recaptured)                 G: Y 80, refunded in full (not giving)
    H: Y-1 60 less a 10 refund, Y 50 (retained, same)
    """
    ids = {}
    plan = {"A": [(Y - 1, "100.00"), (Y, "150.00")], "B": [(Y - 1, "200.00"), (Y, "50.00")],
            "C": [(Y - 3, "40.00"), (Y - 1, "300.00")], "D": [(Y - 3, "500.00")],
            "E": [(Y, "1000.00")], "F": [(Y - 2, "70.00"), (Y, "30.00")],
            "G": [(Y, "80.00")], "H": [(Y - 1, "60.00"), (Y, "50.00")]}
    for name, gifts in plan.items():
        ids[name] = person(api, f"Donor {name}")["id"]
        for year, amount in gifts:
            made = gift(api, ids[name], amount, date(year, 1, 1))
            assert made["status"] == "accepted"
            if name == "G":
                ok(api.post(f"/gifts/{made['id']}/refund", {"refunded_on": f"{Y}-01-01"}))
            if name == "H" and year == Y - 1:
                ok(api.post(f"/gifts/{made['id']}/refund", {"amount": "10.00",
                                                             "refunded_on": f"{Y - 1}-02-01"}))
    return ids


def test_year_figures_lists_pyramid_and_months_are_the_hand_computed_ones(ledger, db):
    r = reports.build(db, Y, "USD", 2, history_years=2)
    last, this = r.by_year
    assert this == reports.YearFigures(
        year=Y, donors=5, total_minor=128000, new=1, retained=3, recaptured=1, lapsed=1,
        upgraded=1, downgraded=1, same=1, retention=Fraction(3, 4))
    assert last == reports.YearFigures(
        year=Y - 1, donors=4, total_minor=65000, new=3, retained=0, recaptured=1, lapsed=1,
        upgraded=0, downgraded=0, same=0, retention=Fraction(0, 1))
    assert r.lybunt == [(ledger["C"], 30000, 34000)]
    assert r.sybunt == [(ledger["D"], Y - 3, 50000)]
    assert r.first_time == [(ledger["E"], 100000)]
    assert [(label, n, total) for label, n, total in r.pyramid if n] == [
        ("under 100", 3, 13000), ("100 – 499", 1, 15000), ("1,000 – 4,999", 1, 100000)]
    assert r.by_month[0] == (1, 5, 128000)  # G's refunded gift is not one of them
    assert all(n == 0 and total == 0 for _m, n, total in r.by_month[1:])


def test_a_past_year_is_reported_as_it_stood_with_later_giving_left_out(ledger, db):
    r = reports.build(db, Y - 1, "USD", 2, history_years=1)
    [figures] = r.by_year
    assert (figures.donors, figures.total_minor, figures.new) == (4, 65000, 3)
    # F gave in Y-2, not in Y-1: last year's LYBUNT; later giving (in Y) does not change it.
    assert r.lybunt == [(ledger["F"], 7000, 7000)]
    # C and D gave in Y-3 only (before Y-2); C came back in Y-1, D did not.
    assert r.sybunt == [(ledger["D"], Y - 3, 50000)]
    assert sorted(d for d, _ in r.first_time) == sorted([ledger["A"], ledger["B"], ledger["H"]])


def test_an_empty_ledger_reports_zeros_and_no_retention(db):
    r = reports.build(db, Y, "USD", 2, history_years=3)
    assert [f.donors for f in r.by_year] == [0, 0, 0]
    assert all(f.retention is None for f in r.by_year)
    assert r.lybunt == r.sybunt == r.first_time == []
    assert len(r.by_month) == 12
