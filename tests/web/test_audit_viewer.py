"""The audit trail viewer: filters, pages, readable data, and the chain check."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db.locking import ledger_write
from app.ledger import audit
from app.ledger.audit import Actor
from models import AuditEntry
from tests.builders import person
from tests.tampering import tamper

CLI = Actor("cli")


def _append(app, count: int, action: str = "test.thing", entity_type: str = "thing",
            actor: Actor = CLI, data=None) -> list[int]:
    with app.extensions["armslength"].sessions() as session:
        with ledger_write(session):
            ids = [audit.append(session, actor, action, entity_type, i + 1,
                                data if data is not None else {"n": i}).id
                   for i in range(count)]
    return ids


def _ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="entry-(\d+)"', html)]


def test_anonymous_is_sent_to_sign_in(client):
    for path in ("/staff/audit/", "/staff/audit/verify"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_viewer_sees_entries_newest_first_with_readable_data(app, web_as, api):
    viewer = web_as("viewer")
    person(api, "Dana Donor", "dana@example.org")
    _append(app, 1, "test.nested", data={"outcomes": {"accept": 2}, "flag": True, "items": [1, 2],
                                         "empty_value": None, "received_on": "2025-01-02"})
    page = viewer.get("/staff/audit/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    ids = _ids(html)
    assert ids == sorted(ids, reverse=True) and len(ids) >= 3
    # Data as label/value pairs, not a JSON blob: booleans as words, lists joined,
    # nested values as compact JSON, underscores as spaces.
    assert "<dt>flag</dt><dd>yes</dd>" in html
    assert "<dt>items</dt><dd>1, 2</dd>" in html
    assert "<dt>outcomes</dt><dd>{&#34;accept&#34;: 2}</dd>" in html
    assert "<dt>received on</dt><dd>2025-01-02</dd>" in html
    assert "<dt>empty value</dt><dd>—</dd>" in html
    assert "donor.created" in html and "api:admin@example.org" in html


def test_filters_by_action_entity_actor_and_dates(app, web_as):
    viewer = web_as("viewer")
    mine = _append(app, 3, "test.alpha", "widget", Actor("web:ana@example.org"))
    _append(app, 2, "test.beta", "gadget", Actor("stripe"))

    by_action = _ids(viewer.get("/staff/audit/?action=test.alpha").get_data(as_text=True))
    assert by_action == sorted(mine, reverse=True)

    by_entity = _ids(viewer.get("/staff/audit/?entity_type=widget&entity_id=2").get_data(as_text=True))
    assert by_entity == [mine[1]]

    by_actor = _ids(viewer.get("/staff/audit/?actor=ANA@").get_data(as_text=True))
    assert by_actor == sorted(mine, reverse=True)
    # LIKE wildcards in the text are taken literally.
    assert _ids(viewer.get("/staff/audit/?actor=%25").get_data(as_text=True)) == []

    today = datetime.now(UTC).date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    assert _ids(viewer.get(f"/staff/audit/?date_from={tomorrow}").get_data(as_text=True)) == []
    assert _ids(viewer.get(f"/staff/audit/?date_to={yesterday}").get_data(as_text=True)) == []
    both = viewer.get(f"/staff/audit/?date_from={today}&date_to={today}&action=test.beta")
    assert len(_ids(both.get_data(as_text=True))) == 2


def test_bad_filters_are_reported_not_guessed(web_as):
    viewer = web_as("viewer")
    response = viewer.get("/staff/audit/?date_from=2025-02-01&date_to=2025-01-01")
    assert response.status_code == 400
    assert "must not be before the start date" in response.get_data(as_text=True)
    assert viewer.get("/staff/audit/?entity_id=abc").status_code == 400


def test_pages_of_fifty_keep_the_filters(app, web_as):
    viewer = web_as("viewer")
    ids = _append(app, 120, "test.bulk")
    first = viewer.get("/staff/audit/?action=test.bulk").get_data(as_text=True)
    assert _ids(first) == sorted(ids, reverse=True)[:50]
    assert "page 1 of 3" in first
    assert 'href="/staff/audit/?page=2&amp;action=test.bulk"' in first
    third = viewer.get("/staff/audit/?action=test.bulk&page=3").get_data(as_text=True)
    assert _ids(third) == sorted(ids, reverse=True)[100:]
    # A page past the end shows the last page rather than nothing.
    assert _ids(viewer.get("/staff/audit/?action=test.bulk&page=99").get_data(as_text=True)) == \
        _ids(third)


def test_verify_reports_an_intact_chain_with_its_length(app, web_as, db):
    viewer = web_as("viewer")
    _append(app, 7)
    total = db.execute(select(func.count(AuditEntry.id))).scalar_one()
    db.rollback()  # end the read transaction (PostgreSQL's driver opens one)
    html = viewer.get("/staff/audit/verify").get_data(as_text=True)
    assert f"Chain intact, {total} entries." in html


def test_verify_finds_a_tampered_row_and_says_where(app, web_as, db):
    viewer = web_as("viewer")
    ids = _append(app, 5, data={"amount": "100.00"})
    target = ids[2]
    tamper(db, "UPDATE audit_entry SET data = :d WHERE id = :id",
           {"d": '{"amount": "1.00"}', "id": target})
    db.commit()
    before = db.execute(select(func.count(AuditEntry.id)).where(AuditEntry.id < target)).scalar_one()
    db.rollback()
    html = viewer.get("/staff/audit/verify").get_data(as_text=True)
    assert f"Chain broken at entry #{target}: content does not match its hash." in html
    assert f"{before} entries before it verified" in html
    assert f'href="/staff/audit/?entry={target}"' in html
    shown = viewer.get(f"/staff/audit/?entry={target}").get_data(as_text=True)
    assert _ids(shown) == [target]


def test_verify_finds_a_deleted_row(app, web_as, db):
    viewer = web_as("viewer")
    ids = _append(app, 4)
    tamper(db, "DELETE FROM audit_entry WHERE id = :id", {"id": ids[1]})
    db.commit()
    html = viewer.get("/staff/audit/verify").get_data(as_text=True)
    assert f"Chain broken at entry #{ids[2]}: previous-hash link does not match." in html
