"""Every staff form, sent back with bad input, says what is wrong next to the field.

The walk takes every staff page that shows a form and posts to itself (app.url_map: a GET
and POST route), fills its address from a small seeded ledger, and posts the page's own
form (its own token) twice: with every text box empty, then with every text box holding
something no field accepts (an over-long text, an impossible date, an ambiguous amount).
On each answer that refuses the input:

* every control marked aria-invalid="true" names, in aria-describedby, an element on the
  page that holds its error text;
* every field error (<small class="error">) is named by the aria-describedby of a control,
  so it is read with its field, not only seen near it;
* a refused form says what is wrong (a field error or a message for the whole form);
* no message is a parser's jargon ("Input should be ...", "String should match pattern").
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from app import create_app
from models import RosterEntry
from tests.builders import World, affiliate, gift, ok
from tests.webtools import page_forms

SECRET = "test-secret-key-not-for-production"
#: Forms that are not staff forms (sign-in and the public donation form have their own tests).
NOT_STAFF = {"account.use_link", "account.second_factor_setup", "auth.login", "auth.code",
             "auth.enrol", "donate.donate"}
#: Messages no person should have to decode.
JARGON = ("Input should be", "String should match pattern", "Extra inputs", "value_error",
          "Not a valid choice", "Invalid value")


def _form_rules():
    app = create_app({"DATABASE_URL": "sqlite://", "TESTING": True, "SECRET_KEY": SECRET})
    return sorted((r.endpoint, r.rule) for r in app.url_map.iter_rules()
                  if {"GET", "POST"} <= r.methods and not r.rule.startswith("/api")
                  and r.endpoint not in NOT_STAFF)


FORM_RULES = _form_rules()


class _Controls(HTMLParser):
    """Controls (input, select, textarea) with their attributes, and elements with ids."""

    def __init__(self):
        super().__init__()
        self.controls: list[dict] = []
        self.by_id: dict[str, dict] = {}
        self._open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        a["_tag"], a["_text"] = tag, ""
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)
        if "id" in a:
            self.by_id[a["id"]] = a
        if tag not in ("input", "br", "img", "meta", "link", "hr"):
            self._open.append(a)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["_tag"] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element["_text"] += data


def _field_errors(page: str) -> list[tuple[str, str]]:
    """(id, text) of each field error: <small class="error" ...> in the main content."""
    main = page.split("<main", 1)[-1]
    return [(re.search(r'id="([^"]*)"', attrs).group(1) if 'id="' in attrs else "",
             re.sub(r"<[^>]+>", "", text).strip())
            for attrs, text in re.findall(r'<small class="error"([^>]*)>(.*?)</small>', main, re.S)]


def _problems(page: str) -> list[str]:
    parsed = _Controls()
    parsed.feed(page)
    problems = []
    described = set()
    for control in parsed.controls:
        ids = control.get("aria-describedby", "").split()
        described.update(ids)
        for ident in ids:
            if ident not in parsed.by_id:
                problems.append(f"{control.get('name')}: aria-describedby names #{ident}, "
                                "which is not on the page")
        if control.get("aria-invalid") == "true":
            texts = [parsed.by_id[i]["_text"].strip() for i in ids if i in parsed.by_id
                     and "error" in parsed.by_id[i].get("class", "")]
            if not any(texts):
                problems.append(f"{control.get('name')}: aria-invalid but no error named by "
                                "aria-describedby")
    for ident, text in _field_errors(page):
        if not ident or ident not in described:
            problems.append(f"field error {text!r} is not tied to its control "
                            "(no id named by an aria-describedby)")
    messages = [text for _, text in _field_errors(page)] + [
        re.sub(r"<[^>]+>", " ", block) for block in
        re.findall(r'class="flash error"[^>]*>(.*?)</(?:div|p)>', page, re.S)]
    for word in JARGON:
        problems += [f"a message in jargon: {m.strip()!r}" for m in messages if word in m]
    return problems


def _seed(api) -> dict:
    world = World(api)
    affiliation = affiliate(api, world.donor["id"], world.other_org["id"], title="Adviser")
    held = gift(api, world.lab_donor["id"], "50.00", "2026-01-11")
    rejected = gift(api, world.employee["id"], "1000.00", "2026-01-11")
    accepted = gift(api, world.donor["id"], "300.00", "2026-01-10")
    in_kind = ok(api.post("/in-kind", {"organization_id": world.lab["id"],
                                       "description": "Model access", "purpose": "evaluation",
                                       "start_date": "2026-01-01"}))
    roster = api.client.post("/api/v1/rosters", headers={**api.headers, "Content-Type": "text/csv"},
                             data=b"name,title,organisation,start,end,source\n"
                                  b"Avery Stone,Chief Scientist,Frontier Lab,2024-01-01,,lab page\n")
    assert roster.status_code == 201, roster.get_json()
    return {"donor_id": world.donor["id"], "org_id": world.other_org["id"],
            "affiliation_id": affiliation["id"], "item_id": in_kind["id"], "year": 2026,
            "kind": "campaign",
            "gift_id": {"review.decide": held["id"], "review.request_override": rejected["id"],
                        None: accepted["id"]}}


def _address(app, endpoint: str, values: dict) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    args = {}
    for name in rule.arguments:
        value = values[name]
        if name == "gift_id":
            value = value.get(endpoint, value[None])
        args[name] = value
    url = app.url_map.bind("localhost").build(endpoint, args, method="GET")
    # The segment form saves a search: give it one.
    return url + ("?giving_min=1" if endpoint == "segments.create" else "")


def _selects(page: str) -> set[str]:
    return set(re.findall(r'<select[^>]*\bname="([^"]+)"', page))


def _typed(form, page: str) -> list[str]:
    """The form's controls a person types into (not its token, selects, boxes or search)."""
    return sorted(n for n in form.names - _selects(page) if n in form.fields
                  and not n.endswith(("csrf_token", "_q"))
                  and not re.search(rf'type="(checkbox|radio|hidden)"[^>]*name="{re.escape(n)}"'
                                    rf'|name="{re.escape(n)}"[^>]*type="(checkbox|radio|hidden)"',
                                    page))


def _bad(name: str, page: str) -> str:
    control = re.search(rf'<(?:input|textarea)[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    tag = control.group(0) if control else ""
    if 'type="date"' in tag:
        return "2026-13-45"
    if 'inputmode="decimal"' in tag or "amount" in name or "value" in name or "goal" in name:
        return "30,00"
    if 'inputmode="numeric"' in tag or 'type="number"' in tag:
        return "many"
    return "x" * 5000


@pytest.mark.parametrize("endpoint", [e for e, _ in FORM_RULES])
def test_form_errors_are_next_to_their_fields(app, api, web_as, endpoint):
    values = _seed(api)
    with app.extensions["armslength"].sessions() as session:
        values["entry_id"] = session.execute(select(RosterEntry.id)).scalars().first()
    admin = web_as("admin")
    path = _address(app, endpoint, values)
    page = admin.get(path)
    assert page.status_code == 200, (path, page.status_code)
    html = page.get_data(as_text=True)
    forms = [f for f in page_forms(html, path) if f.method == "post" and f.posts_to(path)]
    assert forms, f"{path} shows no form posting to itself"
    form = forms[0]
    refused = 0
    if not _typed(form, html):
        # Only choices and boxes to tick (contact preferences): nothing a person can get
        # wrong, so the form as shown must be taken.
        response = admin.post(path, data=form.fields)
        assert response.status_code in (302, 303), (path, response.status_code)
        return
    for fill in ("empty", "bad"):
        data = dict(form.fields)
        for name in _typed(form, html):
            if name in data:
                data[name] = "" if fill == "empty" else _bad(name, html)
        response = admin.post(path, data=data)
        assert response.status_code < 500, (path, fill, response.status_code)
        if response.status_code in (302, 303):
            continue  # accepted as it was (a form with nothing required)
        answer = response.get_data(as_text=True)
        assert response.status_code in (200, 400, 422), (path, fill, response.status_code)
        if response.status_code != 200:
            refused += 1
            assert _field_errors(answer) or 'class="flash error"' in answer, (
                f"{path} ({fill}) refused the form without saying why")
        problems = _problems(answer)
        assert not problems, f"{path} ({fill}):\n  " + "\n  ".join(problems)
    assert refused, f"{path} accepted both an empty and a bad form"
