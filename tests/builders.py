"""Small helpers that arrange a ledger through the public JSON API."""

from __future__ import annotations

from datetime import date


def ok(response, status=201) -> dict:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def organization(api, name, covered_lab=False, parent_id=None) -> dict:
    return ok(api.post("/organizations", {"name": name, "covered_lab": covered_lab,
                                          "parent_id": parent_id}))


def person(api, name, email=None) -> dict:
    return ok(api.post("/donors", {"type": "person", "name": name, "email": email}))


def org_donor(api, name, organization_id=None, category="company") -> dict:
    return ok(api.post("/donors", {"type": "organization", "name": name,
                                   "organization_id": organization_id, "category": category}))


def affiliate(api, donor_id, organization_id, start="2020-01-01", end=None, senior=False,
              title=None, kind="employee") -> dict:
    return ok(api.post(f"/donors/{donor_id}/affiliations", {
        "organization_id": organization_id, "kind": kind, "title": title,
        "senior_decision_maker": senior, "start_date": start, "end_date": end,
    }))


def gift(api, donor_id, amount, on, *, currency="USD", expect=201, **extra) -> dict:
    body = {"donor_id": donor_id, "amount": amount, "currency": currency,
            "received_on": on.isoformat() if isinstance(on, date) else on, **extra}
    return ok(api.post("/gifts", body), expect)


def accepted_gift(api, donor_id, amount, on, **extra) -> dict:
    """A gift that ends up accepted: one the policy holds for a reviewer (large_gift holds
    1,000,000.00 USD and more) is accepted by review, as a reviewer would."""
    made = gift(api, donor_id, amount, on, **extra)
    if made["status"] == "held":
        ok(api.post(f"/gifts/{made['id']}/review",
                    {"outcome": "accept", "reason": "reviewed: a large gift, accepted"}))
        made = ok(api.get(f"/gifts/{made['id']}"), 200)
    assert made["status"] == "accepted", made
    return made


def summary(api, as_of) -> dict:
    day = as_of.isoformat() if isinstance(as_of, date) else as_of
    return ok(api.get(f"/compliance/summary?as_of={day}"), 200)


class World:
    """A lab, a lab employee and an ordinary donor: the cast most scenarios need."""

    def __init__(self, api):
        self.api = api
        self.lab = organization(api, "Frontier Lab", covered_lab=True)
        self.other_org = organization(api, "Plain Corp")
        self.employee = person(api, "Lee Employee")
        affiliate(api, self.employee["id"], self.lab["id"], start="2015-01-01",
                  title="Research engineer")
        self.donor = person(api, "Dana Donor")
        self.lab_donor = org_donor(api, "Frontier Lab (corporate)", self.lab["id"])
