"""Filtered lists: the amount range, and the export button that carries the list's filter so
the CSV holds exactly the rows the list shows (all its pages), formula-safe, audited, and
offered only to the roles that may take copies (app/auth/roles.py "lists.export")."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from models import AuditEntry
from tests import builders as b
from tests.web.test_export import rows_of
from tests.webtools import post_refused, submit


def _gift_ids(page: str) -> list[int]:
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return [int(n) for n in re.findall(r'<a href="/staff/gifts/(\d+)">', body)]


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _world(api):
    dana = b.person(api, "Dana")["id"]
    formula = b.person(api, "=HYPERLINK(\"x\")")["id"]
    return {
        "small": b.gift(api, dana, "10.00", "2026-01-02")["id"],
        "middle": b.gift(api, dana, "1500.00", "2026-01-03")["id"],
        "big": b.gift(api, formula, "25000.00", "2026-01-04")["id"],
        "old": b.gift(api, dana, "2000.00", "2025-06-01")["id"],
    }


def test_gift_list_amount_range_takes_thousands_separators(api, web_as):
    made = _world(api)
    viewer = web_as("viewer")
    page = _text(viewer.get("/staff/gifts/", query_string={"min": "1,000", "max": "24,999.99"}))
    assert sorted(_gift_ids(page)) == sorted([made["middle"], made["old"]])
    assert 'value="1,000"' in page  # the box keeps what was typed
    only_big = _text(viewer.get("/staff/gifts/", query_string={"min": "25,000.00"}))
    assert _gift_ids(only_big) == [made["big"]]
    # A sort link keeps the amounts in force.
    assert 'href="/staff/gifts/?min=25,000.00&sort=donor&dir=asc"' in only_big


def test_gift_list_refuses_a_bad_amount_by_name_and_shows_everything(api, web_as):
    made = _world(api)
    page = _text(web_as("viewer").get("/staff/gifts/", query_string={"min": "30,00"}))
    assert "Amount from:" in page and "ambiguous" in page
    assert sorted(_gift_ids(page)) == sorted(made.values())
    reversed_range = _text(web_as("viewer").get("/staff/gifts/",
                                                query_string={"min": "100", "max": "5"}))
    assert "Amount from is more than amount to" in reversed_range
    assert sorted(_gift_ids(reversed_range)) == sorted(made.values())


def test_export_of_a_filtered_gift_list_holds_exactly_its_rows(api, web_as, app):
    made = _world(api)
    fundraiser = web_as("fundraiser")
    list_path = "/staff/gifts/?from=2026-01-01&min=1,000"
    page = _text(fundraiser.get(list_path))
    shown = _gift_ids(page)
    assert sorted(shown) == sorted([made["middle"], made["big"]])
    action = "/staff/export/gift-list.csv?from=2026-01-01&min=1,000"
    assert f'action="{action}"' in page
    response = submit(fundraiser, list_path, {}, action=action)
    assert response.status_code == 200
    rows = rows_of(response)
    assert sorted(int(r["gift_id"]) for r in rows) == sorted(shown)
    names = {r["donor_name"] for r in rows}
    assert names == {"Dana", "'=HYPERLINK(\"x\")"}  # the formula is neutralised
    with app.extensions["armslength"].sessions() as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "export.gift_list")
                                .order_by(AuditEntry.id.desc())).scalars().first()
        assert entry.data["filters"]["amount_min"] == "1,000"
        assert entry.data["rows_at_request"] == 2


def test_viewer_sees_no_export_button_and_is_refused(api, web_as):
    _world(api)
    viewer = web_as("viewer")
    page = _text(viewer.get("/staff/gifts/"))
    assert "/staff/export/gift-list.csv" not in page
    refused = post_refused(viewer, "/staff/gifts/", "/staff/export/gift-list.csv", {})
    assert refused.status_code == 403


def test_a_list_export_carries_the_lists_columns_not_the_ledgers(api, web_as):
    """A fundraiser may copy a list, never the finance-only ledger export: with no filter at
    all the list's file still holds only what the list shows (no payment ids, references,
    rates or e-mail addresses), and the ledger export itself stays refused."""
    made = _world(api)
    b.gift(api, b.person(api, "Eve", "eve@example.org")["id"], "5.00", "2026-01-05",
           external_ref="cheque-5")
    fundraiser = web_as("fundraiser")
    gifts = rows_of(submit(fundraiser, "/staff/gifts/", {},
                           action="/staff/export/gift-list.csv"))
    assert len(gifts) == len(made) + 1
    assert set(gifts[0]) == {
        "gift_id", "received_on", "donor_id", "donor_name", "currency", "amount",
        "reporting_currency", "reporting_amount", "kind", "purpose", "status", "refunded",
        "net_amount", "reporting_net", "campaign", "appeal", "fund"}
    donors = rows_of(submit(fundraiser, "/staff/donors/", {},
                            action="/staff/export/donor-list.csv"))
    assert set(donors[0]) == {"donor_id", "type", "name", "category", "organization"}
    assert "eve@example.org" not in str(donors) and "cheque-5" not in str(gifts)
    assert post_refused(fundraiser, "/staff/gifts/", "/staff/export/gifts.csv",
                        {}).status_code == 403
