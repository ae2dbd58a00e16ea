"""The public-support computation as plain data: one shape for the API, the staff page and
the CLI. Every figure carries the ids of the gifts behind it."""

from __future__ import annotations

from functools import cache

from app.ledger.public_support import LedgerPublicSupport, public_support
from app.ledger.schedule_b import schedule_b_of
from models.money import format_amount
from policies.public_support import PublicSupportRules, load_rules


@cache
def rules() -> PublicSupportRules:
    return load_rules()


def _money(minor: int, currency: str) -> dict:
    return {"minor": minor, "amount": format_amount(minor, currency)}


def public_support_data(session, tax_year: int, currency: str, gift_ids: bool = True) -> dict:
    """gift_ids=False (the API's gift_ids=false): the same answer without the `gift_ids`
    lists, which are most of its cost on a large ledger (a million ids); counts stay."""
    data = shape(public_support(session, tax_year, rules(), currency, gift_ids=gift_ids))
    if not gift_ids:
        for row in (*data["lines"], *data["contributors"]):
            del row["gift_ids"]
    return data


def shape(found: LedgerPublicSupport) -> dict:
    r, cur = found.result, found.currency
    current = rules()

    def donor(donor_id: int) -> dict:
        name, kind = found.donors.get(donor_id, (None, None))
        return {"id": donor_id, "name": name, "type": kind,
                "support_class": found.unlimited.get(donor_id)}

    return {
        "tax_year": r.tax_year,
        "years": [y.year for y in r.years],
        "rules_version": r.rules_version,
        "currency": cur,
        "lines": [{
            "year": y.year,
            "contributions": _money(y.contributions_minor, cur),
            "gift_ids": y.gift_ids,
            "gift_count": y.gift_count,
            "unusual_grants": _money(y.unusual_minor, cur),
            "unusual_gift_ids": y.unusual_gift_ids,
        } for y in r.years],
        "total_support": _money(r.total_support_minor, cur),
        "donor_limit_fraction": f"{current.donor_limit.numerator}/{current.donor_limit.denominator}",
        "donor_limit": _money(r.donor_limit_minor, cur),
        "excess": _money(r.excess_minor, cur),
        "public_support": _money(r.public_support_minor, cur),
        "percentage": r.percentage_text,
        "percentage_exact": (None if r.percentage is None
                             else f"{r.percentage.numerator}/{r.percentage.denominator}"),
        "meets_support_test": r.meets_support_test,
        "support_test": f"{current.support_test.numerator}/{current.support_test.denominator}",
        "meets_facts_and_circumstances_floor": r.meets_facts_and_circumstances_floor,
        "facts_and_circumstances_floor": (f"{current.facts_and_circumstances_floor.numerator}/"
                                          f"{current.facts_and_circumstances_floor.denominator}"),
        "contributors": [{
            "group_id": c.group_id,
            "donors": [donor(d) for d in c.donor_ids],
            "total": _money(c.total_minor, cur),
            "excess": _money(c.excess_minor, cur),
            "unlimited": c.unlimited,
            "gift_ids": c.gift_ids,
            "gift_count": c.gift_count,
        } for c in r.contributors if c.excess_minor > 0 or c.unlimited or len(c.donor_ids) > 1],
        "contributor_count": r.contributor_count,
        "links": found.links,
        "unusual_grants": [{"gift_id": g, "reason": why} for g, why in sorted(found.unusual.items())
                           if any(g in y.unusual_gift_ids for y in r.years)],
        "gift_url": "/api/v1/gifts/{id}",
    }


def summary_lines(data: dict) -> list[str]:
    """The computation as lines of text (the CLI)."""
    cur = data["currency"]
    lines = [f"Public support, tax year {data['tax_year']} "
             f"(years {data['years'][0]}-{data['years'][-1]}, rules {data['rules_version']})"]
    for line in data["lines"]:
        text = f"  {line['year']}: {line['contributions']['amount']} {cur}"
        if line["unusual_gift_ids"]:
            text += (f" (unusual grants left out: {line['unusual_grants']['amount']} {cur},"
                     f" gifts {', '.join(map(str, line['unusual_gift_ids']))})")
        lines.append(text)
    lines += [
        f"Total support: {data['total_support']['amount']} {cur}",
        f"Limit per contributor ({data['donor_limit_fraction']}): "
        f"{data['donor_limit']['amount']} {cur}",
        f"Excess (line 5): {data['excess']['amount']} {cur}",
        f"Public support (line 6): {data['public_support']['amount']} {cur}",
    ]
    for c in data["contributors"]:
        names = " + ".join(d["name"] or f"donor {d['id']}" for d in c["donors"])
        note = " (not limited)" if c["unlimited"] else f", excess {c['excess']['amount']} {cur}"
        lines.append(f"  {names}: {c['total']['amount']} {cur}{note}; "
                     f"gifts {', '.join(map(str, c['gift_ids']))}")
    verdict = ("meets the 33 1/3% support test" if data["meets_support_test"]
               else "at least 10%: the facts-and-circumstances test may apply"
               if data["meets_facts_and_circumstances_floor"] else "below 10%")
    lines.append(f"Percentage (line 14): {data['percentage'] or 'no support'}"
                 + (f": {verdict}" if data["percentage"] else ""))
    return lines


# --- Schedule B ----------------------------------------------------------------------------

SCHEDULE_B_COPIES = ("staff", "public")


def schedule_b_data(session, year: int, currency: str, copy: str) -> dict:
    """The worksheet. The public copy leaves out names and addresses (the public-inspection
    copy of a public charity's Schedule B need not show them) and donor ids, which lead to
    them."""
    found = schedule_b_of(session, year, rules(), currency)
    s, cur, public = found.schedule, found.currency, copy == "public"
    contributors = []
    for c in s.contributors:
        row = {
            "number": c.number,
            "total": _money(c.total_minor, cur),
            "cash": _money(c.cash_minor, cur),
            "noncash": _money(c.noncash_minor, cur),
            "type": ("Noncash" if c.cash_minor == 0 else
                     "Person, Noncash" if c.noncash_minor else "Person"),
            "noncash_property": [{"description": g.description, "value": _money(g.amount_minor, cur),
                                  "received_on": g.received_on,
                                  **({} if public else {"gift_id": g.gift_id})}
                                 for g in c.noncash],
        }
        if not public:
            name, address, _kind = found.donors.get(c.donor_id, (None, None, None))
            row.update({"donor_id": c.donor_id, "name": name, "address": address,
                        "cash_gift_ids": c.cash_gift_ids})
        contributors.append(row)
    return {
        "year": s.year, "copy": copy, "currency": cur, "rules_version": rules().version,
        "total_contributions": _money(s.total_contributions_minor, cur),
        "special_rule": s.special_rule,
        "public_support_percentage": found.public_support_percentage,
        "threshold": _money(s.threshold_minor, cur),
        "contributors": contributors,
    }


SCHEDULE_B_HEADER = {
    "staff": ("number", "name", "address", "donor_id", "type", "total", "cash", "noncash",
              "noncash_description", "currency"),
    "public": ("number", "type", "total", "cash", "noncash", "noncash_description", "currency"),
}


def schedule_b_rows(data: dict) -> list[tuple]:
    """One CSV row per contributor (cells are neutralised by csv_chunks)."""
    rows = []
    for c in data["contributors"]:
        described = "; ".join(p["description"] or "" for p in c["noncash_property"])
        values = {"number": c["number"], "name": c.get("name"), "address": c.get("address"),
                  "donor_id": c.get("donor_id"), "type": c["type"],
                  "total": c["total"]["amount"], "cash": c["cash"]["amount"],
                  "noncash": c["noncash"]["amount"], "noncash_description": described,
                  "currency": data["currency"]}
        rows.append(tuple(values[h] for h in SCHEDULE_B_HEADER[data["copy"]]))
    return rows
