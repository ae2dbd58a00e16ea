"""Facts that change after the money arrived re-screen the affected gifts: each gets a new
`rescreen` decision with outcome `hold` and waits for a reviewer. Nothing changes silently."""

from __future__ import annotations

import pytest

from models import Decision
from tests.api.helpers import count, reason
from tests.builders import World, affiliate, gift, ok, organization, person, summary


@pytest.fixture
def w(api):
    return World(api)


def _aff(organization_id, start, end=None, senior=False, title=None):
    return {"organization_id": organization_id, "kind": "employee", "title": title,
            "senior_decision_maker": senior, "start_date": start, "end_date": end}


def _decisions(api, gift_id):
    return [(d["kind"], d["outcome"]) for d in api.get(f"/gifts/{gift_id}").get_json()["decisions"]]


def test_late_lab_affiliation_holds_the_accepted_gifts_it_covers(api, w):
    gift(api, w.donor["id"], "10000.00", "2026-01-01")
    ada = person(api, "Ada")
    early = gift(api, ada["id"], "100.00", "2025-06-01")
    g1 = gift(api, ada["id"], "200.00", "2026-02-01")
    g2 = gift(api, ada["id"], "300.00", "2026-03-01")
    assert {early["status"], g1["status"], g2["status"]} == {"accepted"}
    response = api.post(f"/donors/{ada['id']}/affiliations",
                        _aff(w.lab["id"], "2026-01-15", title="Researcher"))
    aff = ok(response)
    assert aff["rescreened_gift_ids"] == [g1["id"], g2["id"]]
    assert (aff["donor_id"], aff["organization_id"], aff["start_date"]) == (ada["id"], w.lab["id"],
                                                                             "2026-01-15")
    for held in (g1, g2):
        shown = api.get(f"/gifts/{held['id']}").get_json()
        assert shown["status"] == "held"
        assert _decisions(api, held["id"]) == [("screening", "accept"), ("rescreen", "hold")]
        assert shown["decision"]["decided_by"] == api.user_id
        assert shown["decision"]["note"].startswith("Affiliation recorded: Ada, employee at")
    assert _decisions(api, early["id"]) == [("screening", "accept")]  # before the affiliation
    assert api.get(f"/gifts/{early['id']}").get_json()["status"] == "accepted"


def test_rescreened_gifts_no_longer_count_in_the_summary(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    ada = person(api, "Ada")
    gift(api, ada["id"], "500.00", "2026-02-01")
    assert summary(api, "2026-03-01")["total_funding"] == "1500.00"
    api.post(f"/donors/{ada['id']}/affiliations", _aff(w.lab["id"], "2020-01-01"))
    s = summary(api, "2026-03-01")
    assert (s["total_funding"], s["lab_employee_funding"]) == ("1000.00", "0.00")


def test_late_senior_affiliation_holds_gifts_and_shows_the_policy_would_reject(api, w):
    gift(api, w.donor["id"], "10000.00", "2026-01-01")
    ceo = person(api, "Chris CEO")
    made = gift(api, ceo["id"], "100.00", "2026-02-01")
    assert made["status"] == "accepted"
    aff = ok(api.post(f"/donors/{ceo['id']}/affiliations",
                      _aff(w.lab["id"], "2018-01-01", senior=True, title="CEO")))
    assert aff["rescreened_gift_ids"] == [made["id"]]
    shown = api.get(f"/gifts/{made['id']}").get_json()
    assert (shown["status"], shown["decision"]["kind"], shown["decision"]["outcome"]) == (
        "held", "rescreen", "hold")
    senior = reason(shown, "senior_decision_maker")
    assert (senior["fired"], senior["outcome"]) == (True, "reject")


def test_affiliation_to_an_uncovered_organisation_rescreens_nothing(api, db, w):
    gift(api, w.donor["id"], "100.00", "2026-01-01")
    decisions = count(db, Decision)
    aff = ok(api.post(f"/donors/{w.donor['id']}/affiliations", _aff(w.other_org["id"], "2020-01-01")))
    assert aff["rescreened_gift_ids"] == []
    assert count(db, Decision) == decisions


def test_affiliation_to_a_lab_affiliate_rescreens(api, w):
    gift(api, w.donor["id"], "10000.00", "2026-01-01")
    foundation = organization(api, "Frontier Lab Foundation", parent_id=w.lab["id"])
    ada = person(api, "Ada")
    made = gift(api, ada["id"], "100.00", "2026-02-01")
    aff = ok(api.post(f"/donors/{ada['id']}/affiliations", _aff(foundation["id"], "2026-01-01")))
    assert aff["rescreened_gift_ids"] == [made["id"]]


def test_ended_affiliation_rescreens_through_the_cooling_off_period_only(api, w):
    gift(api, w.donor["id"], "10000.00", "2025-01-01")
    ada = person(api, "Ada")
    inside = gift(api, ada["id"], "100.00", "2025-12-31")   # 364 days after the end
    outside = gift(api, ada["id"], "100.00", "2026-01-01")  # 365 days after: cooled off
    aff = ok(api.post(f"/donors/{ada['id']}/affiliations",
                      _aff(w.lab["id"], "2020-01-01", end="2025-01-01")))
    assert aff["rescreened_gift_ids"] == [inside["id"]]
    assert api.get(f"/gifts/{outside['id']}").get_json()["status"] == "accepted"


def test_gifts_attributed_to_the_person_are_rescreened_too(api, w):
    gift(api, w.donor["id"], "10000.00", "2026-01-01")
    ada = person(api, "Ada")
    joint = gift(api, w.donor["id"], "100.00", "2026-02-01", attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.5"}, {"donor_id": ada["id"], "fraction": "0.5"}])
    aff = ok(api.post(f"/donors/{ada['id']}/affiliations", _aff(w.lab["id"], "2020-01-01")))
    assert aff["rescreened_gift_ids"] == [joint["id"]]
    shown = api.get(f"/gifts/{joint['id']}").get_json()
    assert shown["status"] == "held"
    assert shown["decision"]["figures"]["gift_lab_employee"] == "50.00"


def test_rejected_gifts_are_not_rescreened(api, w):
    gift(api, w.donor["id"], "1000.00", "2026-01-01")
    accepted = gift(api, w.employee["id"], "100.00", "2026-02-01")
    rejected = gift(api, w.employee["id"], "5000.00", "2026-02-01")
    assert (accepted["status"], rejected["status"]) == ("accepted", "rejected")
    aff = ok(api.post(f"/donors/{w.employee['id']}/affiliations",
                      _aff(w.lab["id"], "2025-01-01", senior=True, title="VP")))
    assert aff["rescreened_gift_ids"] == [accepted["id"]]
    assert _decisions(api, rejected["id"]) == [("screening", "reject")]


def test_changing_an_affiliation_rescreens_both_its_old_and_new_dates(api, api_as, w):
    gift(api, w.donor["id"], "10000.00", "2021-01-01")
    gift(api, w.donor["id"], "10000.00", "2024-01-01")
    ada = person(api, "Ada")
    aff = affiliate(api, ada["id"], w.lab["id"], start="2020-01-01", end="2020-12-31")
    in_old = gift(api, ada["id"], "100.00", "2021-06-01")   # within the old cooling-off
    between = gift(api, ada["id"], "100.00", "2023-01-01")  # in neither range
    in_new = gift(api, ada["id"], "100.00", "2024-06-01")
    assert in_old["lab_employee_amount"] == "100.00" and in_new["lab_employee_amount"] == "0.00"
    response = api.put(f"/affiliations/{aff['id']}", _aff(w.lab["id"], "2024-01-01"))
    # Reopening it applies at once (it re-screens the new dates); the later start weakens
    # and waits for a second person, whose approval re-screens the old dates.
    assert response.status_code == 202
    opened = response.get_json()
    assert (opened["id"], opened["start_date"], opened["end_date"]) == (aff["id"], "2020-01-01", None)
    assert opened["rescreened_gift_ids"] == [in_old["id"], between["id"], in_new["id"]]
    approved = ok(api_as("reviewer").post(f"/changes/{opened['change_id']}/approve"), 200)
    changed = api.get(f"/donors/{ada['id']}").get_json()["affiliations"][0]
    assert (changed["id"], changed["start_date"], changed["end_date"]) == (aff["id"], "2024-01-01", None)
    assert approved["rescreened_gift_ids"] == [in_old["id"], between["id"], in_new["id"]]
    assert _decisions(api, in_old["id"]) == [("screening", "accept"), ("rescreen", "hold"),
                                            ("rescreen", "hold")]
    assert _decisions(api, in_new["id"]) == [("screening", "accept"), ("rescreen", "hold"),
                                            ("rescreen", "hold")]
    assert _decisions(api, between["id"]) == [("screening", "accept"), ("rescreen", "hold"),
                                             ("rescreen", "hold")]
    # Re-screened with the new facts: the old gift is no longer lab money, the new one is.
    def lab_part(made):
        return api.get(f"/gifts/{made['id']}").get_json()["decision"]["figures"]["gift_lab_employee"]

    assert (lab_part(in_old), lab_part(in_new)) == ("0.00", "100.00")


def test_unchanged_affiliation_put_rescreens_nothing(api, db, w):
    gift(api, w.donor["id"], "10000.00", "2024-01-01")
    ada = person(api, "Ada")
    aff = affiliate(api, ada["id"], w.lab["id"], start="2020-01-01", title="Engineer")
    made = gift(api, ada["id"], "100.00", "2024-06-01")
    decisions = count(db, Decision)
    same = api.put(f"/affiliations/{aff['id']}", _aff(w.lab["id"], "2020-01-01", title="Engineer"))
    assert same.status_code == 200
    assert same.get_json()["rescreened_gift_ids"] == []
    assert count(db, Decision) == decisions
    assert api.get(f"/gifts/{made['id']}").get_json()["status"] == "accepted"


def test_moving_an_affiliation_to_an_uncovered_organisation_rescreens_its_old_range(api, api_as,
                                                                                   w):
    gift(api, w.donor["id"], "10000.00", "2024-01-01")
    ada = person(api, "Ada")
    aff = affiliate(api, ada["id"], w.lab["id"], start="2020-01-01")
    made = gift(api, ada["id"], "100.00", "2024-06-01")
    waiting = ok(api.put(f"/affiliations/{aff['id']}", _aff(w.other_org["id"], "2020-01-01")), 202)
    assert waiting["rescreened_gift_ids"] == []  # moving it away weakens: a second person first
    changed = ok(api_as("reviewer").post(f"/changes/{waiting['change_id']}/approve"), 200)
    assert changed["rescreened_gift_ids"] == [made["id"]]


def test_held_gift_rescreened_again_gets_another_decision(api, w):
    gift(api, w.donor["id"], "10000.00", "2026-01-01")
    ada = person(api, "Ada")
    made = gift(api, ada["id"], "100.00", "2026-02-01")
    aff = affiliate(api, ada["id"], w.lab["id"], start="2020-01-01")
    assert aff["rescreened_gift_ids"] == [made["id"]]
    again = api.put(f"/affiliations/{aff['id']}", _aff(w.lab["id"], "2020-01-01", senior=True)).get_json()
    assert again["rescreened_gift_ids"] == [made["id"]]
    assert _decisions(api, made["id"]) == [("screening", "accept"), ("rescreen", "hold"),
                                          ("rescreen", "hold")]
    assert api.get(f"/gifts/{made['id']}").get_json()["status"] == "held"


def test_affiliation_put_validates_and_404s(api, w):
    ada = person(api, "Ada")
    aff = affiliate(api, ada["id"], w.lab["id"], start="2020-01-01")
    bad = api.put(f"/affiliations/{aff['id']}", {**_aff(w.lab["id"], "2020-01-01"),
                                                  "end_date": "2019-01-01"})
    assert bad.status_code == 422
    assert api.put(f"/affiliations/{aff['id']}", _aff(987_654, "2020-01-01")).status_code == 422
    assert api.put("/affiliations/987654", _aff(w.lab["id"], "2020-01-01")).status_code == 404
    shown = api.get(f"/donors/{ada['id']}").get_json()["affiliations"]
    assert [(a["start_date"], a["end_date"]) for a in shown] == [("2020-01-01", None)]
