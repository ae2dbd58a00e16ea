"""Rotating the seal key (`armslength audit-seal-rotate`, app.ledger.seal_rotation): every
keyed seal (donors' identity, roster entries' identity, staff password hashes) is made
anew under the new key in one audited step; afterwards verification passes with the new key
and names every keyed seal with the old one. A row edited behind the app's back before the
rotation stops it: nothing is written, and the edit stays a finding. On SQLite and
PostgreSQL alike."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.ledger import seal_key
from models import AuditEntry
from tests.builders import affiliate, ok, organization, person
from tests.tampering import tamper_apart

NEW_KEY = "5f" * 32


def _findings(api) -> set[tuple[str, str]]:
    report = ok(api.get("/audit/verify"), 200)
    return {(f["table"], f["problem"]) for f in report["row_findings"]}


@pytest.fixture
def keys(tmp_path):
    """The key in use (the development key these tests run with) and a new one, in files."""
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    old.write_text(seal_key.DEVELOPMENT_KEY.decode() + "\n")
    new.write_text(NEW_KEY + "\n")
    yield old, new
    seal_key.configure(None)  # the rotation switched this process to the new key


@pytest.fixture
def ledger(api, api_as):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp = person(api, "Morgan Chen", "morgan@halcyon.example")
    affiliate(api, vp["id"], lab["id"], senior=True, title="Vice President")
    reviewer = api_as("reviewer")
    ok(reviewer.client.post("/api/v1/rosters", data=(
        b"name,title,organisation,start,end,source\n"
        b"Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,leadership page\n"),
        headers={**reviewer.headers, "Content-Type": "text/csv"}))
    assert _findings(api) == set()
    return vp


def _rotate(app, old, new):
    return app.test_cli_runner().invoke(args=[
        "audit-seal-rotate", "--old-key-file", str(old), "--new-key-file", str(new)])


def test_after_rotation_the_new_key_verifies_and_the_old_one_does_not(app, api, db, keys,
                                                                      ledger):
    old, new = keys
    result = _rotate(app, old, new)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("re-sealed ")
    assert seal_key.current() == NEW_KEY.encode()
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is True, report["row_findings"]

    seal_key.configure(seal_key.DEVELOPMENT_KEY)  # the old key
    assert _findings(api) == {("donor.identity", "content differs"),
                              ("roster_entry.identity", "content differs"),
                              ("staff_user.password", "content differs")}

    # The chain says what happened, naming the keys by id only.
    [data] = db.execute(select(AuditEntry.data).where(
        AuditEntry.action == "ledger.seal_key_rotated")).scalars().all()
    db.rollback()
    assert data["old_key_id"] == seal_key.key_id(seal_key.DEVELOPMENT_KEY)
    assert data["new_key_id"] == seal_key.key_id(NEW_KEY.encode())
    assert data["seals"] == ["donor.identity", "gift_tribute.names", "roster_entry.identity",
                             "staff_user.password"]
    assert NEW_KEY not in json.dumps(data)


def test_the_app_keeps_sealing_under_the_new_key(app, api, keys, ledger):
    old, new = keys
    assert _rotate(app, old, new).exit_code == 0
    person(api, "Ana Ruiz", "ana@example.org")  # sealed under the key in use: the new one
    assert ok(api.get("/audit/verify"), 200)["ok"] is True


def test_a_row_edited_before_the_rotation_stops_it(app, api, db, database_url, keys, ledger):
    old, new = keys
    tamper_apart(database_url, f"UPDATE donor SET name = 'Pat Q' WHERE id = {ledger['id']}")
    entries = db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    db.rollback()
    result = _rotate(app, old, new)
    assert result.exit_code == 1
    assert f"donor.identity {ledger['id']}: differs from its keyed seal" in result.stderr
    assert db.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == entries
    db.rollback()
    assert seal_key.current() == seal_key.DEVELOPMENT_KEY  # still the old key
    assert _findings(api) == {("donor.identity", "content differs")}


def test_the_keys_are_checked(app, tmp_path, keys):
    old, new = keys
    short = tmp_path / "short.key"
    short.write_text("too short\n")
    for args, says in (
        (["--old-key-file", str(old), "--new-key-file", str(old)], "is the key in use"),
        (["--old-key-file", str(old), "--new-key-file", str(short)], "at least 32"),
        (["--old-key-file", str(old)], "no new key"),
        (["--new-key-file", str(new)], "no key in use is configured"),
    ):
        result = app.test_cli_runner().invoke(args=["audit-seal-rotate", *args])
        assert result.exit_code != 0 and says in result.output + result.stderr, (args, result)
