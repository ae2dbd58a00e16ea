"""A known ledger for the disclosure tests, built through the JSON API, and every
disclosure figure recomputed from the tables with plain Python (not app.ledger.disclosure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from sqlalchemy import select

from models import Decision, Donor, Gift, InKindArrangement, Organization, Refund
from tests.builders import affiliate, gift, ok, org_donor, organization, person

START = date(2026, 1, 1)
END = date(2026, 6, 30)
#: Names of the people in the ledger: none may appear in a disclosure.
PEOPLE = ("Dana Donor", "Lee Employee", "Sam Senior", "Robin Rich", "Kim Kind")


@dataclass
class Ledger:
    lab: dict
    affiliate_org: dict
    plain: dict
    dana: dict
    lee: dict
    sam: dict
    lab_donor: dict
    gifts: dict[str, dict] = field(default_factory=dict)


#: What the reviewers wrote to be published; their reasons (internal) must never appear.
PUBLIC_NOTES = {
    "corp_ok": "Unrestricted grant with no conditions, approved by our board.",
    "senior": "Pledged before the appointment of the donor; accepted once.",
}
INTERNAL_NOTES = ("Invoice misfiled; counsel approved acceptance",
                  "Unrestricted grant; board approved, no strings",
                  "Pledge made before the appointment")


def _review(api, gift_id, outcome, reason, public_note=None):
    body = {"outcome": outcome, "reason": reason}
    if public_note:
        body["public_note"] = public_note
    return ok(api.post(f"/gifts/{gift_id}/review", body))


def _override(api, second, gift_id, reason, public_note=None):
    body = {"outcome": "accept", "reason": reason}
    if public_note:
        body["public_note"] = public_note
    request_ = ok(api.post(f"/gifts/{gift_id}/override", body))
    return ok(second.post(f"/overrides/{request_['id']}/approve", {}))


def build_ledger(api, second) -> Ledger:
    """`api`: an admin; `second`: a second reviewer who approves overrides."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    foundation = organization(api, "Frontier Lab Foundation", parent_id=lab["id"])
    plain = organization(api, "Plain Cloud Co")
    dana = person(api, "Dana Donor", "dana@example.org")
    lee = person(api, "Lee Employee", "lee@example.org")
    affiliate(api, lee["id"], lab["id"], start="2015-01-01", title="Research engineer")
    sam = person(api, "Sam Senior")
    affiliate(api, sam["id"], lab["id"], start="2019-01-01", senior=True, title="Chief scientist")
    robin = person(api, "Robin Rich")
    lab_donor = org_donor(api, "Frontier Lab (corporate)", lab["id"])
    w = Ledger(lab, foundation, plain, dana, lee, sam, lab_donor)
    g = w.gifts

    g["before"] = gift(api, lee["id"], "1000.00", "2025-12-01")            # before the period
    g["dana"] = gift(api, dana["id"], "10000.00", "2026-01-10")
    g["lee1"] = gift(api, lee["id"], "3000.00", "2026-02-01")
    g["lee2"] = gift(api, lee["id"], "2999.99", "2026-03-01")
    # A joint gift, half a lab employee's: its refunds take lab money back pro rata.
    g["joint"] = gift(api, dana["id"], "1000.01", "2026-02-10", attributions=[
        {"donor_id": dana["id"], "fraction": "0.5"}, {"donor_id": lee["id"], "fraction": "0.5"}])
    g["robin_eur"] = gift(api, robin["id"], "900.00", "2026-02-20", currency="EUR",
                          fx_rate="1.1")
    # A lab's payment for evaluations: rejected, then accepted by a two-person override.
    g["eval"] = gift(api, lab_donor["id"], "5000.00", "2026-03-10",
                     purpose="evaluation_services")
    assert g["eval"]["status"] == "rejected"
    _override(api, second, g["eval"]["id"], "Invoice misfiled; counsel approved acceptance")
    # Lab corporate money: held, one accepted by a reviewer with a reason, one rejected.
    g["corp_ok"] = gift(api, lab_donor["id"], "2000.00", "2026-04-01")
    assert g["corp_ok"]["status"] == "held"
    _review(api, g["corp_ok"]["id"], "accept", "Unrestricted grant; board approved, no strings",
            PUBLIC_NOTES["corp_ok"])
    g["corp_no"] = gift(api, lab_donor["id"], "1000.00", "2026-04-15")
    _review(api, g["corp_no"]["id"], "reject", "Declined: tied to an upcoming evaluation")
    # A senior decision-maker's gift: rejected, then overridden.
    g["senior"] = gift(api, sam["id"], "500.00", "2026-05-01")
    assert g["senior"]["status"] == "rejected"
    _override(api, second, g["senior"]["id"], "Pledge made before the appointment",
              PUBLIC_NOTES["senior"])
    # A senior gift that stays rejected, and a lab employee's gift over the cap.
    g["senior_no"] = gift(api, sam["id"], "300.00", "2026-05-02")
    g["over_cap"] = gift(api, lee["id"], "90000.00", "2026-05-03")
    assert g["over_cap"]["status"] == "rejected"
    # In-kind support from the lab, given as a gift (disclosed, not funding).
    g["inkind_gift"] = gift(api, lab_donor["id"], "1200.00", "2026-02-15", kind="in_kind",
                            description="API credits for research")
    # Refunds: Dana's gift in part (the share rises), Lee's first gift in part (lab money
    # comes back pro rata) and a refund dated after the period (it must not count).
    ok(api.post(f"/gifts/{g['dana']['id']}/refund", {"amount": "6000.00",
                                                     "refunded_on": "2026-05-15"}))
    ok(api.post(f"/gifts/{g['lee1']['id']}/refund", {"amount": "1000.01",
                                                     "refunded_on": "2026-06-01"}))
    ok(api.post(f"/gifts/{g['joint']['id']}/refund", {"amount": "333.33",
                                                      "refunded_on": "2026-03-05"}))
    ok(api.post(f"/gifts/{g['joint']['id']}/refund", {"amount": "0.01",
                                                      "refunded_on": "2026-03-06"}))
    ok(api.post(f"/gifts/{g['robin_eur']['id']}/refund", {"amount": "100.00",
                                                          "refunded_on": "2026-07-02"}))
    g["after"] = gift(api, dana["id"], "700.00", "2026-07-05")             # after the period

    # In-kind arrangements: two with the lab (one through its foundation) overlap the period,
    # one ended before it, and one is with an organisation that is not a lab.
    for org_id, description, purpose, start, end, value in (
        (lab["id"], "Pre-release model access for evaluations", "evaluation", "2025-09-01",
         None, None),
        (foundation["id"], "Research API credits", "research", "2026-02-01", "2026-03-31",
         "25000.00"),
        (lab["id"], "Old compute grant", "research", "2024-01-01", "2025-06-30", "1000.00"),
        (plain["id"], "Spare GPUs", "other", "2026-01-01", None, "3000.00"),
    ):
        body = {"organization_id": org_id, "description": description, "purpose": purpose,
                "start_date": start, "end_date": end}
        if value:
            body |= {"estimated_value": value, "currency": "USD"}
        ok(api.post("/in-kind", body))
    return w


# --- the figures, recomputed -------------------------------------------------------------------

def read_tables(db) -> dict:
    """Every row the figures depend on, read in one transaction that then ends."""
    try:
        tables = {
            "gifts": db.execute(select(Gift)).scalars().all(),
            "decisions": db.execute(select(Decision).order_by(Decision.id)).scalars().all(),
            "refunds": db.execute(select(Refund)).scalars().all(),
            "in_kind": db.execute(select(InKindArrangement)).scalars().all(),
            "orgs": db.execute(select(Organization)).scalars().all(),
            "donors": db.execute(select(Donor)).scalars().all(),
        }
        for rows in tables.values():
            for row in rows:
                db.expunge(row)
        return tables
    finally:
        db.rollback()


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def share_string(value: Fraction) -> str:
    """Six places, truncated, by integer arithmetic."""
    micro = value.numerator * 1_000_000 // value.denominator
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def _fired(decision, rule) -> bool:
    return any(r["rule"] == rule and r["fired"] for r in decision.reasons)


def expected(tables: dict, start: date, end: date, window_days: int = 365) -> dict:
    gifts = tables["gifts"]
    decisions: dict[int, list] = {}
    for d in tables["decisions"]:
        decisions.setdefault(d.gift_id, []).append(d)
    accepted = sorted((g for g in gifts if g.status == "accepted" and start <= g.received_on <= end),
                      key=lambda g: g.id)

    def refunded(gift_id, by):
        return sum(r.reporting_amount_minor for r in tables["refunds"]
                   if r.gift_id == gift_id and r.refunded_on <= by)

    def tally(rule):
        chosen = [g for g in accepted if _fired(decisions[g.id][-1], rule)]
        return {"count": len(chosen), "amount": money(sum(g.reporting_amount_minor for g in chosen)),
                "refunded": money(sum(refunded(g.id, end) for g in chosen)),
                "gift_ids": [g.id for g in chosen]}

    def window(day):
        total = lab = 0
        for g in gifts:
            if g.status != "accepted" or g.kind != "cash":
                continue
            if not day - timedelta(days=window_days - 1) <= g.received_on <= day:
                continue
            back = refunded(g.id, day)
            total += g.reporting_amount_minor - back
            lab += g.lab_minor - (back * g.lab_minor // g.reporting_amount_minor)
        return total, lab

    series = []
    day = start
    while day <= end:
        total, lab = window(day)
        series.append((day, Fraction(lab, total) if total else Fraction(0), total, lab))
        day += timedelta(days=1)
    peak = max(s[1] for s in series)
    # `on` is the first day the published (6-place) highest share was reached.
    peak_day = next(s[0] for s in series if share_string(s[1]) == share_string(peak))

    orgs = {o.id: o for o in tables["orgs"]}

    def covered(org_id):
        seen = set()
        while org_id is not None and org_id not in seen:
            if orgs[org_id].covered_lab:
                return True
            seen.add(org_id)
            org_id = orgs[org_id].parent_id
        return False

    corporate = [
        g for g in accepted
        if _fired(next(d for d in decisions[g.id] if d.kind == "screening"), "lab_corporate_money")
        and decisions[g.id][-1].kind in ("review", "override")
    ]
    in_kind = sorted(
        (i for i in tables["in_kind"]
         if covered(i.organization_id) and i.start_date <= end
         and (i.end_date is None or i.end_date >= start)),
        key=lambda i: (i.start_date, i.id))
    return {
        "lab_evaluation_payments_accepted": tally("lab_evaluation_payment"),
        "senior_decision_maker_gifts_accepted": tally("senior_decision_maker"),
        "lab_employee_share_at_end": share_string(series[-1][1]),
        "lab_employee_share_max": {"value": share_string(peak), "on": peak_day.isoformat()},
        "funding_at_end": {"total": money(series[-1][2]), "lab_employee": money(series[-1][3])},
        "lab_corporate_accepted": [
            {"gift_id": g.id, "amount": money(g.reporting_amount_minor), "on": g.received_on.isoformat(),
             "reason": decisions[g.id][-1].public_note or "No public justification given.",
             "refunded": money(refunded(g.id, end))}
            for g in corporate
        ],
        "exceptions_accepted": [
            {"gift_id": g.id, "rule": rule, "on": g.received_on.isoformat(),
             "amount": money(g.reporting_amount_minor),
             "public_justification": decisions[g.id][-1].public_note}
            for g in accepted for rule in ("lab_evaluation_payment", "senior_decision_maker")
            if _fired(decisions[g.id][-1], rule)
        ],
        "in_kind": [
            {"organization": orgs[i.organization_id].name, "description": i.description,
             "purpose": i.purpose, "start_date": i.start_date.isoformat(),
             "end_date": i.end_date.isoformat() if i.end_date else None,
             "estimated_value": money(i.estimated_value_minor)
             if i.estimated_value_minor is not None else None}
            for i in in_kind
        ],
        "in_kind_gifts": [g.id for g in accepted if g.kind == "in_kind" and g.disclose],
        "series": series,
    }


def assert_matches(content: dict, want: dict) -> None:
    """Every figure of a disclosure's JSON equals the recomputed one."""
    for key in ("lab_evaluation_payments_accepted", "senior_decision_maker_gifts_accepted",
                "lab_employee_share_at_end", "lab_employee_share_max", "funding_at_end"):
        assert content[key] == want[key], (key, content[key], want[key])
    got_corporate = [{k: c[k] for k in ("gift_id", "amount", "on", "reason", "refunded")}
                     for c in content["lab_corporate_accepted"]]
    assert got_corporate == want["lab_corporate_accepted"]
    got_exceptions = [{k: e[k] for k in ("gift_id", "rule", "on", "amount", "public_justification")}
                      for e in content["exceptions_accepted"]]
    assert got_exceptions == want["exceptions_accepted"]
    got_in_kind = [{k: i[k] for k in ("organization", "description", "purpose", "start_date",
                                      "end_date", "estimated_value")} for i in content["in_kind"]]
    assert got_in_kind == want["in_kind"]
    assert [g["gift_id"] for g in content["in_kind_gifts"]] == want["in_kind_gifts"]
