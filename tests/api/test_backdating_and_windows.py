"""The lab-employee cap: strictly below 50%, over trailing 365-day windows, including the
windows of later dates with accepted gifts (a back-dated gift must not break them)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.api.helpers import days, fired, reason
from tests.builders import World, affiliate, gift, person, summary

D = date(2026, 3, 1)


@pytest.fixture
def w(api):
    return World(api)


def test_lab_share_just_below_half_is_accepted(api, w):
    gift(api, w.donor["id"], "1000.00", D)
    made = gift(api, w.employee["id"], "999.99", D)
    assert made["status"] == "accepted"
    figures = made["decision"]["figures"]
    assert (figures["share_before"], figures["share_after"]) == ("0.000000", "0.499997")
    assert figures["headroom"] == "999.99"


def test_lab_share_of_exactly_half_is_rejected(api, w):
    gift(api, w.donor["id"], "1000.00", D)
    made = gift(api, w.employee["id"], "1000.00", D)
    assert (made["status"], fired(made)) == ("rejected", ["lab_employee_cap"])
    assert made["decision"]["figures"]["breaking_share"] == "0.500000"
    assert reason(made, "lab_employee_cap")["message"] == (
        "Lab-employee money would reach 50% of funding on the gift date; it must stay below 50%.")


def test_first_gift_of_an_empty_ledger_from_a_lab_employee_is_rejected(api, w):
    made = gift(api, w.employee["id"], "1.00", D)
    assert (made["status"], made["decision"]["figures"]["breaking_share"]) == ("rejected",
                                                                              "1.000000")


def test_window_ending_d_starts_364_days_before_d(api, w):
    gift(api, w.donor["id"], "1000.00", D - days(365))  # outside the window ending D
    gift(api, w.donor["id"], "10.00", D - days(364))    # inside it
    s = summary(api, D)
    assert (s["window_start"], s["window_end"]) == ((D - days(364)).isoformat(), D.isoformat())
    assert s["total_funding"] == "10.00"
    assert summary(api, D - days(1))["total_funding"] == "1010.00"


def test_funding_dated_365_days_earlier_does_not_make_room(api, w):
    gift(api, w.donor["id"], "1000.00", D - days(365))
    made = gift(api, w.employee["id"], "100.00", D)
    assert (made["status"], made["decision"]["figures"]["share_before"]) == ("rejected", "0.000000")


def test_funding_dated_364_days_earlier_makes_room(api, w):
    gift(api, w.donor["id"], "1000.00", D - days(364))
    made = gift(api, w.employee["id"], "100.00", D)
    assert made["status"] == "accepted"
    assert made["decision"]["figures"]["share_after"] == "0.090909"


def test_cooling_off_after_an_affiliation_ends(api, w):
    """Lab employee while the affiliation lasts and until 365 days after its last day."""
    gift(api, w.donor["id"], "10000.00", D)
    lab_part = {}
    for ended_days_before in (0, 1, 364, 365, 800):
        former = person(api, f"Former employee {ended_days_before}")
        affiliate(api, former["id"], w.lab["id"], start="2015-01-01",
                  end=(D - days(ended_days_before)).isoformat())
        made = gift(api, former["id"], "100.00", D)
        assert made["status"] == "accepted"
        lab_part[ended_days_before] = made["lab_employee_amount"]
    assert lab_part == {0: "100.00", 1: "100.00", 364: "100.00", 365: "0.00", 800: "0.00"}


def test_affiliation_starting_after_the_gift_date_does_not_count(api, w):
    future = person(api, "Future Employee")
    affiliate(api, future["id"], w.lab["id"], start=(D + days(1)).isoformat())
    made = gift(api, future["id"], "100.00", D)
    assert (made["status"], made["lab_employee_amount"]) == ("accepted", "0.00")


def test_senior_cooling_off_uses_the_same_period(api, w):
    gift(api, w.donor["id"], "100000.00", D)
    ex_cto = person(api, "Ex CTO")
    affiliate(api, ex_cto["id"], w.lab["id"], start="2015-01-01", senior=True, title="CTO",
              end=(D - days(364)).isoformat())
    assert gift(api, ex_cto["id"], "10.00", D)["status"] == "rejected"
    assert gift(api, ex_cto["id"], "10.00", D + days(1))["status"] == "accepted"


# --- back-dated gifts -------------------------------------------------------------------

def test_backdated_gift_that_breaks_a_later_window_is_rejected_naming_that_date(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    later = gift(api, w.employee["id"], "900.00", "2026-03-01")  # 900 / 1900: accepted
    assert later["status"] == "accepted"
    # On its own date it fits (200 / 1200); in the window ending 2026-03-01 it would
    # make 1100 / 2100 = 52.38%.
    made = gift(api, w.employee["id"], "200.00", "2026-02-01")
    assert (made["status"], fired(made)) == ("rejected", ["lab_employee_cap"])
    figures = made["decision"]["figures"]
    assert figures["share_after"] == "0.166666"
    assert (figures["breaking_window_end"], figures["breaking_share"]) == ("2026-03-01", "0.523809")
    assert figures["windows_checked"] == 2
    assert reason(made, "lab_employee_cap")["message"] == (
        "Lab-employee money would reach 52.3% of funding in the window ending 2026-03-01, "
        "a later date with accepted gifts; it must stay below 50%.")


def test_backdated_gift_that_fits_every_later_window_is_accepted(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    gift(api, w.employee["id"], "900.00", "2026-03-01")
    made = gift(api, w.employee["id"], "99.99", "2026-02-01")  # 999.99 / 1999.99 on 2026-03-01
    assert made["status"] == "accepted"
    assert made["decision"]["figures"]["windows_checked"] == 2


def test_backdated_gift_365_days_before_a_later_gift_ignores_its_window(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-03-01")
    gift(api, w.employee["id"], "900.00", "2026-03-01")
    gift(api, w.donor["id"], "1000.00", "2025-03-01")
    made = gift(api, w.employee["id"], "900.00", "2025-03-01")  # 2026-03-01 is 365 days later
    assert made["status"] == "accepted"
    assert made["decision"]["figures"]["windows_checked"] == 1


def test_backdated_gift_364_days_before_a_later_gift_must_fit_its_window(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-03-01")
    gift(api, w.employee["id"], "900.00", "2026-03-01")
    gift(api, w.donor["id"], "1000.00", "2025-03-01")
    made = gift(api, w.employee["id"], "900.00", "2025-03-02")  # 1800 / 2800 on 2026-03-01
    assert (made["status"], made["decision"]["figures"]["breaking_window_end"]) == ("rejected",
                                                                                   "2026-03-01")


def test_dates_without_accepted_gifts_are_not_decision_points(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    assert gift(api, w.lab_donor["id"], "5000.00", "2026-02-01")["status"] == "held"
    assert gift(api, w.employee["id"], "5000.00", "2026-02-15")["status"] == "rejected"
    made = gift(api, w.employee["id"], "900.00", "2026-01-10")
    # Later dates hold only a held and a rejected gift: only the gift's own window counts.
    assert made["decision"]["figures"]["windows_checked"] == 1
    # The non-lab gift ages out of the windows ending from 2027-01-01 on; no gift is
    # recorded then, so no decision checked it: the summary reports the breach instead.
    assert summary(api, "2027-01-01")["in_breach"] is True


# --- headroom ---------------------------------------------------------------------------

def test_headroom_is_the_largest_acceptable_lab_gift(api, w):
    gift(api, w.donor["id"], "1234.57", D)
    gift(api, w.employee["id"], "100.00", D)
    s = summary(api, D)
    # (10000 + x) / (133457 + x) < 1/2  <=>  x < 113457 cents
    assert (s["headroom"], s["lab_employee_share"]) == ("1134.56", "0.074930")
    made = gift(api, w.employee["id"], s["headroom"], D)
    assert made["status"] == "accepted"
    after = summary(api, D)
    assert (after["headroom"], after["lab_employee_share"]) == ("0.00", "0.499997")


@pytest.mark.parametrize("amount,status", [("1134.56", "accepted"), ("1134.57", "rejected")])
def test_headroom_plus_one_cent_is_rejected_on_an_identical_ledger(api, w, amount, status):
    gift(api, w.donor["id"], "1234.57", D)
    gift(api, w.employee["id"], "100.00", D)
    assert summary(api, D)["headroom"] == "1134.56"
    assert gift(api, w.employee["id"], amount, D)["status"] == status


def test_headroom_accounts_for_later_decision_points(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    gift(api, w.employee["id"], "900.00", "2026-03-01")
    s = summary(api, "2026-02-01")
    # Window ending 2026-02-01: room for 999.99; window ending 2026-03-01: only 99.99.
    assert s["headroom"] == "99.99"
    assert gift(api, w.employee["id"], "99.99", "2026-02-01")["status"] == "accepted"
    assert summary(api, "2026-02-01")["headroom"] == "0.00"
