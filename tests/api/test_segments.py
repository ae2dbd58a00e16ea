"""Donor segments through the JSON API: each criterion selects the right donors, a segment
is its filter (a donor who qualifies later joins it), and permissions follow roles.py."""

from __future__ import annotations

import pytest

from tests import builders as b


def _ids(response) -> list[int]:
    body = b.ok(response, 200)
    return [d["id"] for d in body["items"]]


def _segment(api, criteria, name=None, status=201):
    return b.ok(api.post("/segments", {"name": name or repr(sorted(criteria.items())),
                                       "criteria": criteria}), status)


@pytest.fixture
def people(api):
    """Ann gave 1,500 (2024, 2026) to the spring campaign; Ben gave 50 in 2025; Cy gave
    nothing and works at Acme; Di and Ed share a household; Ann carries a tag."""
    acme = b.organization(api, "Acme Foundation")
    spring = b.ok(api.post("/campaigns", {"code": "spring", "name": "Spring",
                                          "starts_on": "2024-01-01"}))
    fund = b.ok(api.post("/funds", {"code": "general", "name": "General"}))
    ids = {name: b.person(api, name)["id"] for name in ("Ann", "Ben", "Cy", "Di", "Ed")}
    b.gift(api, ids["Ann"], "1000.00", "2024-03-01", campaign_id=spring["id"])
    b.gift(api, ids["Ann"], "500.00", "2026-02-01", fund_id=fund["id"])
    b.gift(api, ids["Ben"], "50.00", "2025-05-05")
    b.affiliate(api, ids["Cy"], acme["id"], start="2019-01-01", end="2020-01-01")
    b.ok(api.post(f"/donors/{ids['Di']}/relationships", {
        "related_donor_id": ids["Ed"], "kind": "household", "start_date": "2020-01-01"}))
    b.ok(api.put(f"/donors/{ids['Ann']}/tags", {"tags": ["major-donor", "board"]}), 200)
    return {**ids, "acme": acme["id"], "spring": spring["id"], "fund": fund["id"]}


@pytest.mark.parametrize("criteria, expected", [
    ({"giving_min": "1,000"}, ["Ann"]),
    ({"giving_min": "10", "giving_max": "999.99"}, ["Ben"]),
    ({"giving_max": "100"}, ["Ben", "Cy", "Di", "Ed"]),  # no giving is giving 0
    ({"first_gift_from": "2024-01-01", "first_gift_to": "2024-12-31"}, ["Ann"]),
    ({"last_gift_from": "2025-01-01", "last_gift_to": "2025-12-31"}, ["Ben"]),
    ({"campaign_id": "spring"}, ["Ann"]),
    ({"fund_id": "fund"}, ["Ann"]),
    ({"organization_id": "acme"}, ["Cy"]),  # affiliated at any time
    ({"household": "yes"}, ["Di", "Ed"]),
    ({"household": "no", "giving_max": "0.01"}, ["Cy"]),
    ({"tag": "major-donor"}, ["Ann"]),
    ({"q": "ben"}, ["Ben"]),
    ({"type": "organization"}, []),
])
def test_each_criterion_selects_its_donors(api, people, criteria, expected):
    criteria = {k: people[v] if k.endswith("_id") else v for k, v in criteria.items()}
    segment = _segment(api, criteria)
    assert segment["criteria"] == criteria
    found = _ids(api.get(f"/segments/{segment['id']}/donors"))
    assert found == sorted(people[name] for name in expected)


def test_a_segment_is_its_filter_not_a_frozen_list(api, people):
    segment = _segment(api, {"giving_min": "1,000"}, "Major donors")
    assert _ids(api.get(f"/segments/{segment['id']}/donors")) == [people["Ann"]]
    b.gift(api, people["Ben"], "2000.00", "2026-03-01")
    assert _ids(api.get(f"/segments/{segment['id']}/donors")) == sorted(
        [people["Ann"], people["Ben"]])
    listed = b.ok(api.get("/segments"), 200)["items"]
    assert [s["name"] for s in listed] == ["Major donors"]


def test_members_page_by_id(api, people):
    segment = _segment(api, {"giving_max": "100"})
    first = b.ok(api.get(f"/segments/{segment['id']}/donors", query_string={"limit": 2}), 200)
    assert len(first["items"]) == 2 and first["next_after_id"] == first["items"][-1]["id"]
    rest = b.ok(api.get(f"/segments/{segment['id']}/donors",
                        query_string={"after_id": first["next_after_id"]}), 200)
    assert [d["id"] for d in first["items"] + rest["items"]] == sorted(
        people[n] for n in ("Ben", "Cy", "Di", "Ed"))


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "criteria": {"giving_min": "30,00"}}, "criteria.giving_min"),
    ({"name": "x", "criteria": {"giving_min": "10.001"}}, "criteria.giving_min"),
    ({"name": "x", "criteria": {"giving_min": "100", "giving_max": "5"}}, "criteria.giving_max"),
    ({"name": "x", "criteria": {"campaign_id": 999}}, "criteria.campaign_id"),
    ({"name": "x", "criteria": {"tag": "Not A Tag"}}, "criteria.tag"),
    ({"name": "x", "criteria": {"colour": "red"}}, "criteria.colour"),
    ({"name": "", "criteria": {}}, "name"),
])
def test_bad_segments_are_refused_by_field(api, body, field):
    response = api.post("/segments", body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()


def test_names_are_unique(api):
    _segment(api, {"type": "person"}, "People")
    again = api.post("/segments", {"name": "People", "criteria": {"type": "organization"}})
    assert again.status_code == 422 and "name" in again.get_json()["errors"]


def test_permissions_follow_roles(api_as, api, people):
    viewer, fundraiser = api_as("viewer"), api_as("fundraiser")
    refused = viewer.post("/segments", {"name": "v", "criteria": {"type": "person"}})
    assert refused.status_code == 403
    made = _segment(fundraiser, {"type": "person"}, "From a fundraiser")
    assert b.ok(viewer.get(f"/segments/{made['id']}"), 200)["name"] == "From a fundraiser"
    assert viewer.put(f"/donors/{people['Ben']}/tags", {"tags": ["x"]}).status_code == 403
    assert viewer.get(f"/segments/{made['id']}/donors").status_code == 200
    assert viewer.get("/segments/999999/donors").status_code == 404


def test_tags_set_exactly_and_are_audited(api, people, app):
    from sqlalchemy import select

    from models import AuditEntry

    ben = people["Ben"]
    assert b.ok(api.put(f"/donors/{ben}/tags", {"tags": ["b", "a", "a"]}), 200)["tags"] == ["a", "b"]
    assert b.ok(api.put(f"/donors/{ben}/tags", {"tags": ["c"]}), 200)["tags"] == ["c"]
    assert b.ok(api.get(f"/donors/{ben}/tags"), 200)["tags"] == ["c"]
    assert api.put(f"/donors/{ben}/tags", {"tags": ["UPPER"]}).status_code == 422
    with app.extensions["armslength"].sessions() as session:
        entries = session.execute(select(AuditEntry.data).where(
            AuditEntry.action == "donor.tags_set", AuditEntry.entity_id == ben)
            .order_by(AuditEntry.id)).scalars().all()
    assert entries == [{"added": ["a", "b"], "removed": []}, {"added": ["c"], "removed": ["a", "b"]}]


def test_merging_two_tagged_records_keeps_each_tag_once(api, api_as):
    keep = b.person(api, "Pat Keep")["id"]
    twin = b.person(api, "Pat Twin")["id"]
    b.ok(api.put(f"/donors/{keep}/tags", {"tags": ["board", "gala"]}), 200)
    b.ok(api.put(f"/donors/{twin}/tags", {"tags": ["gala", "volunteer"]}), 200)
    merged = b.ok(api_as("reviewer").post(f"/donors/{keep}/merge", {"duplicate_id": twin}), 200)
    assert len(merged["moved"]["donor_tag.donor_id"]) == 1  # "volunteer"; "gala" was kept once
    assert b.ok(api.get(f"/donors/{keep}/tags"), 200)["tags"] == ["board", "gala", "volunteer"]
    # A merged record is never a segment member, and its tags cannot be set any more.
    segment = _segment(api, {"tag": "gala"})
    assert _ids(api.get(f"/segments/{segment['id']}/donors")) == [keep]
    assert api.put(f"/donors/{twin}/tags", {"tags": ["x"]}).status_code == 422
