"""Signed audit checkpoints (issue 12): tampering that the hash chain alone misses.

Each attack edits the database directly, through a connection of its own (as someone with
database access would), and then `verify-audit`, GET /api/v1/audit/verify, the staff audit
check and the public disclosure page must say what is wrong, naming the checkpoint or the
disclosure. Without tampering everything passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app import create_app
from app.db.locking import ledger_write
from app.ledger import audit, checkpoints
from app.ledger.audit import entry_hash
from app.ledger.signing import AuditKeys, generate_key_file, key_id, public_hex
from models import AuditCheckpoint, AuditEntry, PublishedDisclosure
from models.append_only import APPEND_ONLY_TABLES, drop_statements
from tests.builders import World, gift
from tests.conftest import TEST_ACTOR
from tests.empty_db import BACKENDS, empty_database
from tests.web.ledger_reads import objects
from tests.web.ledger_reads import text as page_text
from tests.webtools import submit, submit_shown

START, END, DAY = "2026-01-01", "2026-06-30", "2026-03-01"


# --- helpers ------------------------------------------------------------------------------------

def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def as_owner(conn) -> None:
    """On PostgreSQL, act as the database's owner would: with triggers (append-only ones
    included) and foreign-key checks off for this transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        # SQLite has no such switch: whoever holds the file drops the append-only triggers
        # (models.append_only); each test has a fresh file.
        for table in APPEND_ONLY_TABLES:
            for statement in drop_statements("sqlite", table):
                conn.execute(text(statement))


def raw_sql(app, *statements: tuple[str, dict]) -> None:
    """Statements on a connection of their own, committed: the app's ORM is not involved."""
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            as_owner(conn)
            for sql, params in statements:
                conn.execute(text(sql), params)
    finally:
        engine.dispose()


def publish(web_as, start=START, end=END):
    reviewer = web_as("reviewer")
    return submit(reviewer, f"/staff/disclosures/preview?from={start}&to={end}",
                  {"start": start, "end": end}, action="/staff/disclosures/publish")


def verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def more_entries(app, count: int) -> None:
    """`count` real audit entries, appended the way the ledger appends them."""
    with app.extensions["armslength"].sessions() as session, ledger_write(session):
        audit.append_many(session, TEST_ACTOR,
                          [("note.added", "note", n, {"n": n}) for n in range(count)])


def checkpoint(app) -> dict:
    result = run(app, "audit-checkpoint", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):])


def chain_length(db) -> int:
    return len(objects(db, select(AuditEntry.id)))


@pytest.fixture
def ledger(api):
    world = World(api)
    gift(api, world.donor["id"], "100.00", DAY)
    gift(api, world.employee["id"], "20.00", DAY)
    return world


# --- no tampering -------------------------------------------------------------------------------

def test_an_untampered_ledger_passes_everywhere(app, api, ledger, web_as, client, db, audit_key):
    assert publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedDisclosure))
    [published_entry] = objects(db, select(AuditEntry).where(
        AuditEntry.action == "disclosure.published"))
    # Publishing took a checkpoint ending at its own audit entry, signing its content hash.
    [cp] = objects(db, select(AuditCheckpoint))
    assert (cp.disclosure_id, cp.content_hash) == (record.id, record.content_hash)
    assert (cp.head, cp.entry_id, cp.length) == (published_entry.hash, published_entry.id,
                                                 chain_length(db))
    assert cp.public_key == audit_key.public_key and cp.key_id == key_id(audit_key.public_key)

    gift(api, ledger.donor["id"], "5.00", DAY)
    scheduled = checkpoint(app)
    assert scheduled["length"] == chain_length(db) and scheduled["disclosure_id"] is None

    report = verify(api)
    assert (report["ok"], report["broken_at"], report["problem"]) == (True, None, None)
    assert report["checkpoints"]["count"] == 2 and report["checkpoints"]["ok"] is True
    assert report["checkpoints"]["latest"]["id"] == scheduled["id"]
    assert report["checkpoints"]["entries_after_latest"] == 0
    assert report["disclosures"] == {"count": 1, "verified": 1, "unsigned": [], "failures": []}

    cli = run(app, "verify-audit")
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.splitlines()[0] == f"audit chain intact: {chain_length(db)} entries"
    assert "checkpoints: 2 verified" in cli.stdout
    page = page_text(client.get(f"/disclosures/{record.id}"))
    assert "(verified)" in page and f"Signed checkpoint #{cp.id}" in page
    staff = page_text(web_as("viewer").get("/staff/audit/verify"))
    assert "All 2 checkpoints hold." in staff and "match their audit entries" in staff


def test_without_a_key_development_publishes_unsigned_and_never_says_verified(
        app, api, ledger, web_as, client, db):
    assert publish(web_as).status_code == 302
    assert objects(db, select(AuditCheckpoint)) == []
    page = page_text(client.get("/disclosures/1"))
    assert "(verified)" not in page
    assert "(matches its audit entry; published without a signed checkpoint)" in page
    assert client.get("/disclosures/1.signed.json").status_code == 404
    report = verify(api)
    assert report["ok"] is True and report["disclosures"]["unsigned"] == [1]
    failed = run(app, "audit-checkpoint")
    assert failed.exit_code == 1 and "no audit signing key is configured" in failed.stderr


def test_once_signing_has_begun_a_disclosure_without_a_checkpoint_fails(
        app, api, ledger, client, db, policy, audit_key):
    """An unsigned disclosure from before signing began stays "unsigned"; one published after
    the first checkpoint without a checkpoint of its own (a process started without the key,
    the key taken out of the configuration) fails, on the public page and in verify-audit."""
    from datetime import date

    from app.ledger import disclosure

    early = disclosure.publish(db, date(2025, 1, 1), date(2025, 3, 31), policy, "USD", "Org",
                               TEST_ACTOR)  # no keys: unsigned
    db.commit()
    checkpoint(app)  # signing begins
    [signed] = objects(db, select(AuditCheckpoint))
    assert verify(api)["ok"] is True
    later = disclosure.publish(db, date(2025, 4, 1), date(2025, 6, 30), policy, "USD", "Org",
                               TEST_ACTOR)  # no keys again
    db.commit()
    problem = (f"disclosure {later.id}: published without a signed checkpoint after signing "
               f"began (checkpoint #{signed.id}, at audit entry #{signed.entry_id})")
    report = verify(api)
    assert report["ok"] is False and report["problem"] == problem
    assert report["checkpoints"]["ok"] is True
    assert report["disclosures"]["unsigned"] == [early.id]
    assert report["disclosures"]["failures"] == [{"disclosure_id": later.id, "problem": problem}]
    result = run(app, "verify-audit")
    assert result.exit_code == 1 and problem in result.stderr
    page = page_text(client.get(f"/disclosures/{later.id}"))
    assert "(verified)" not in page and "published without a signed checkpoint after" in page
    assert "(matches its audit entry; published without a signed checkpoint)" in page_text(
        client.get(f"/disclosures/{early.id}"))


def test_a_deleted_disclosure_checkpoint_is_not_taken_for_unsigned(app, api, ledger, web_as,
                                                                   db, audit_key):
    """Its own checkpoint was the first: deleted, the earliest left is after it, so only
    its audit entry (which says it was signed) shows the gap."""
    assert publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedDisclosure))
    [entry_id] = objects(db, select(AuditEntry.id).where(
        AuditEntry.action == "disclosure.published"))
    checkpoint(app)  # a scheduled one after it: it becomes the earliest checkpoint
    assert verify(api)["ok"] is True
    raw_sql(app, ("DELETE FROM audit_checkpoint WHERE disclosure_id = :id", {"id": record.id}))
    report = verify(api)
    assert report["ok"] is False and report["disclosures"]["unsigned"] == []
    [failure] = report["disclosures"]["failures"]
    assert failure == {"disclosure_id": record.id, "problem": (
        f"disclosure {record.id}: its audit entry (#{entry_id}) says it was signed, but it has "
        "no checkpoint (deleted?)")}


def test_production_without_a_key_refuses_to_publish(database_url, db):
    """An unsigned disclosure would be a public claim nobody outside can check, and a key
    removed by an insider must not quietly switch signing off: production refuses."""
    app = create_app({"DATABASE_URL": database_url, "ORG_TIMEZONE": "UTC",
                      "ARMSLENGTH_ENV": "production", "SECRET_KEY": "p" * 40,
                      "AUDIT_SEAL_KEY": "s" * 40})
    from tests.webtools import make_user, sign_in

    make_user(app, "rev@example.org", "reviewer")
    reviewer = app.test_client()
    reviewer.environ_base["wsgi.url_scheme"] = "https"  # the session cookie is Secure
    # Production requires a reviewer's second factor: enrol it, as tests/web/test_accounts does.
    assert sign_in(reviewer, "rev@example.org").status_code == 303
    # The page shows its key once: answer the form that came with it.
    shown = page_text(reviewer.get("/login/enrol"))
    secret = re.search(r"<code class=\"totp-secret\">([A-Z2-7]+)</code>", shown).group(1)
    assert submit_shown(reviewer, "/login/enrol", shown,
                        {"code": pyotp.TOTP(secret).now()}).status_code == 302
    refused = submit(reviewer, f"/staff/disclosures/preview?from={START}&to={END}",
                     {"start": START, "end": END}, action="/staff/disclosures/publish")
    assert refused.status_code == 409
    assert ("Nothing was published: no audit signing key is configured (AUDIT_SIGNING_KEY_FILE "
            "or AUDIT_SIGNING_KEY): in production a disclosure is published only with a signed "
            "checkpoint.") in page_text(refused)
    assert objects(db, select(PublishedDisclosure)) == []
    app.extensions["armslength"].engine.dispose()


# --- a truncated tail ---------------------------------------------------------------------------

def test_deleting_the_last_50_entries_fails_from_the_checkpoint_on(app, api, ledger, db,
                                                                     audit_key, web_as, client):
    more_entries(app, 40)
    first = checkpoint(app)
    more_entries(app, 60)
    second = checkpoint(app)
    assert verify(api)["ok"] is True
    ids = objects(db, select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(50))
    raw_sql(app, ("DELETE FROM audit_entry WHERE id >= :id", {"id": min(ids)}))

    report = verify(api)
    # The remaining prefix links up: only the checkpoints see the missing tail.
    assert (report["ok"], report["broken_at"]) == (False, None)
    cps = report["checkpoints"]
    assert cps["broken_at"] == second["id"] and first["id"] not in [f["id"] for f in cps["failures"]]
    assert (f"it signed {second['length']} entries but the trail has only "
            f"{second['length'] - 50}: entries were deleted") in cps["problem"]
    assert report["problem"].startswith(f"checkpoint #{second['id']} (entry {second['length']}")

    cli = run(app, "verify-audit")
    assert cli.exit_code == 1
    assert f"checkpoints FAIL from checkpoint #{second['id']} on" in cli.stderr
    staff = page_text(web_as("viewer").get("/staff/audit/verify"))
    assert f"Checkpoints fail from checkpoint #{second['id']} on." in staff
    # A new checkpoint is never signed over a failing trail: it would anchor the deletion.
    refused = run(app, "audit-checkpoint")
    assert refused.exit_code == 1 and "fails verification, nothing was signed" in refused.stderr
    assert len(objects(db, select(AuditCheckpoint))) == 2


# --- a chain re-hashed from its first entry -------------------------------------------------------

def rehash_everything(app, forge) -> None:
    """Rewrite the whole chain with the real algorithm after `forge(entry)` edits entries:
    every link and hash is consistent again, as a forger with database access would make it."""
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with Session(engine) as session:
            entries = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
            prev = audit.GENESIS_HASH
            updates = []
            for entry in entries:
                forge(entry)
                new = entry_hash(prev, entry)
                updates.append({"id": entry.id, "prev": prev, "hash": new, "actor": entry.actor})
                prev = new
            session.expunge_all()
            as_owner(session.connection())
            # Unique hashes: park them first so no new hash meets an old one mid-update.
            session.execute(text("UPDATE audit_entry SET hash = 'x' || CAST(id AS VARCHAR)"))
            session.execute(text("UPDATE audit_entry SET prev_hash = :prev, hash = :hash, "
                                 "actor = :actor WHERE id = :id"), updates)
            session.commit()
    finally:
        engine.dispose()


def test_a_chain_rehashed_from_entry_one_fails_from_the_first_checkpoint(app, api, ledger, db,
                                                                         audit_key):
    more_entries(app, 5)
    first = checkpoint(app)
    more_entries(app, 5)
    second = checkpoint(app)

    def forge(entry):
        if entry.action == "gift.recorded":
            entry.actor = "someone innocent"

    rehash_everything(app, forge)
    report = verify(api)
    assert report["broken_at"] is None  # the chain's own links are all consistent again
    assert report["ok"] is False
    cps = report["checkpoints"]
    assert cps["broken_at"] == first["id"]
    assert [f["id"] for f in cps["failures"]] == [first["id"], second["id"]]
    assert "not the signed head" in cps["failures"][0]["problem"]
    cli = run(app, "verify-audit")
    assert cli.exit_code == 1 and f"from checkpoint #{first['id']} on" in cli.stderr


def test_a_forger_cannot_sign_with_a_key_of_their_own(app, api, ledger, db, audit_key):
    """Rewrite the chain, then insert a checkpoint of the rewritten head signed by a key the
    forger made, its public key stored beside it: it is not a configured key."""
    checkpoint(app)
    rehash_everything(app, lambda entry: setattr(entry, "actor", "forged"))
    forger = AuditKeys(Ed25519PrivateKey.generate())
    engine = create_engine(app.config["DATABASE_URL"])
    with Session(engine) as session, session.begin():
        forged = checkpoints.take(session, forger)
        forged_id, forged_key = forged.id, forged.key_id
    engine.dispose()

    report = verify(api)
    failures = {f["id"]: f["problem"] for f in report["checkpoints"]["failures"]}
    assert failures[forged_id] == (f"signed by key {forged_key}, which is not a trusted key "
                                   "(the signing key or AUDIT_TRUSTED_KEYS)")
    assert report["ok"] is False

    # Nor by claiming the trusted key's id and public key for the forged signature.
    raw_sql(app, ("INSERT INTO audit_checkpoint (length, entry_id, head, signed_at, key_id, "
                  "public_key, signature) SELECT length, entry_id, head, signed_at, :kid, :pub, "
                  "signature FROM audit_checkpoint WHERE id = :id",
                  {"kid": key_id(audit_key.public_key), "pub": audit_key.public_key,
                   "id": forged_id}))
    failures = verify(api)["checkpoints"]["failures"]
    assert failures[-1]["problem"] == "signed, but its signature does not verify"


def test_after_a_key_rotation_old_checkpoints_verify_only_if_the_old_key_is_configured(
        app, api, ledger, audit_key, tmp_path):
    old = checkpoint(app)
    new_key = tmp_path / "new-key.pem"
    new_public = generate_key_file(new_key)
    settings = {"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True,
                "SECRET_KEY": "test-secret-key-not-for-production",
                "AUDIT_SIGNING_KEY_FILE": str(new_key)}

    # The new key signs; the old public key stays listed, so the old checkpoint still holds.
    rotated = create_app({**settings, "AUDIT_TRUSTED_KEYS": audit_key.public_key})
    assert checkpoint(rotated)["key_id"] == key_id(new_public)
    passed = run(rotated, "verify-audit")
    assert passed.exit_code == 0, passed.output
    assert "checkpoints: 2 verified" in passed.stdout
    rotated.extensions["armslength"].engine.dispose()

    forgot = create_app(settings)
    failed = run(forgot, "verify-audit")
    assert failed.exit_code == 1
    assert f"checkpoint #{old['id']}" in failed.stderr and "not a trusted key" in failed.stderr
    forgot.extensions["armslength"].engine.dispose()


def test_checkpoints_kept_outside_the_database_catch_deleted_checkpoint_rows(
        app, api, ledger, audit_key, tmp_path):
    """The forger rewrites the chain and deletes every checkpoint row: the database alone can
    no longer tell. The lines the scheduled job kept elsewhere still can."""
    log = tmp_path / "checkpoints.log"
    more_entries(app, 5)
    first = run(app, "audit-checkpoint", "--json").stdout
    more_entries(app, 5)
    log.write_text(first + run(app, "audit-checkpoint", "--json").stdout)
    assert len(log.read_text().splitlines()) == 2
    kept = run(app, "verify-audit", "--checkpoints", str(log))
    assert kept.exit_code == 0, kept.output
    assert "checkpoints kept outside the database: 2 verified" in kept.stdout

    rehash_everything(app, lambda entry: setattr(entry, "actor", "forged"))
    raw_sql(app, ("DELETE FROM audit_checkpoint", {}))
    assert verify(api)["ok"] is True  # the gap outside copies close
    result = run(app, "verify-audit", "--checkpoints", str(log))
    assert result.exit_code == 1
    first_cp = json.loads(first)
    assert (f"checkpoint #{first_cp['id']} (entry {first_cp['length']}, signed "
            f"{first_cp['signed_at'][:19]}+00:00, a copy kept outside the database): it is no "
            "longer in the database (deleted or replaced)") in result.stderr
    assert f"checkpoints FAIL from checkpoint #{first_cp['id']} on" in result.stderr

    junk = tmp_path / "junk.log"
    junk.write_text('{"id": 1}')
    refused = run(app, "verify-audit", "--checkpoints", str(junk))
    assert refused.exit_code == 1 and "not a checkpoint" in refused.stderr


# --- a rewritten disclosure ---------------------------------------------------------------------

def _rewrite_disclosure_and_its_hash(app, api, web_as, client, db):
    assert publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedDisclosure))
    content = json.loads(record.content)
    content["lab_employee_share_at_end"] = "0.000000"
    forged = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw_sql(app, ("UPDATE published_disclosure SET content = :c, content_hash = :h WHERE id = :id",
                  {"c": forged, "h": checkpoints.content_hash(forged), "id": record.id}))

    page = page_text(client.get(f"/disclosures/{record.id}"))
    assert "(verified)" not in page
    assert (f"(does not match: disclosure {record.id}: its content hash differs from the one in "
            "its disclosure.published audit entry") in page
    report = verify(api)
    assert report["ok"] is False
    assert [f["disclosure_id"] for f in report["disclosures"]["failures"]] == [record.id]
    cli = run(app, "verify-audit")
    assert cli.exit_code == 1 and f"disclosure {record.id}: its content hash differs" in cli.stderr


def test_rewriting_a_signed_disclosure_and_its_hash_is_caught(app, api, ledger, web_as, client,
                                                              db, audit_key):
    _rewrite_disclosure_and_its_hash(app, api, web_as, client, db)


def test_rewriting_an_unsigned_disclosure_and_its_hash_is_caught(app, api, ledger, web_as,
                                                                 client, db):
    _rewrite_disclosure_and_its_hash(app, api, web_as, client, db)


def test_rewriting_the_audit_entry_too_is_caught_by_the_signed_checkpoint(app, api, ledger,
                                                                          web_as, client, db,
                                                                          audit_key):
    """The forger also rewrites the disclosure.published entry's content_hash and re-hashes
    the chain: only the signature, over the real content hash, still tells."""
    assert publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedDisclosure))
    forged = record.content.replace('"title":', '"note":"rewritten","title":')
    forged_hash = checkpoints.content_hash(forged)
    raw_sql(app, ("UPDATE published_disclosure SET content = :c, content_hash = :h WHERE id = :id",
                  {"c": forged, "h": forged_hash, "id": record.id}))

    def forge(entry):
        if entry.action == "disclosure.published":
            entry.data = {**entry.data, "content_hash": forged_hash}

    engine = create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:  # the entry's data first (JSON), then every hash
        as_owner(conn)
        cast = "CAST(:d AS json)" if conn.dialect.name == "postgresql" else ":d"
        data = objects(db, select(AuditEntry.data).where(AuditEntry.action == "disclosure.published"))[0]
        conn.execute(text(f"UPDATE audit_entry SET data = {cast} WHERE action = "
                          "'disclosure.published'"),
                     {"d": json.dumps({**data, "content_hash": forged_hash})})
    engine.dispose()
    rehash_everything(app, lambda entry: None)

    page = page_text(client.get(f"/disclosures/{record.id}"))
    assert "(verified)" not in page
    assert "its content hash differs from the one signed in checkpoint #1" in page
    report = verify(api)
    assert report["broken_at"] is None and report["ok"] is False
    assert report["checkpoints"]["broken_at"] == 1
    assert [f["disclosure_id"] for f in report["disclosures"]["failures"]] == [record.id]


# --- offline: verify-disclosure -------------------------------------------------------------------

@pytest.fixture
def signed_file(app, ledger, web_as, client, audit_key, tmp_path):
    assert publish(web_as).status_code == 302
    response = client.get("/disclosures/1.signed.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    path = tmp_path / "disclosure-1.signed.json"
    path.write_bytes(response.data)
    return path


def test_verify_disclosure_passes_offline(app, signed_file, audit_key, tmp_path, client):
    bundle = json.loads(signed_file.read_text())
    # The content is the published JSON itself, byte for byte.
    assert bundle["content"].encode() == client.get("/disclosures/1.json").data
    # Needs no database: an app pointed at a database that does not exist still checks it.
    offline = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/missing/none.sqlite3",
                          "TESTING": True, "SECRET_KEY": "test-secret-key-not-for-production"})
    result = run(offline, "verify-disclosure", str(signed_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"disclosure 1 verified: content SHA-256 {bundle['content_hash']}")
    assert "compare it with the key the organisation publishes" in result.stdout

    key_file = tmp_path / "org.pub"
    key_file.write_text(audit_key.public_key + "\n")
    trusted = run(offline, "verify-disclosure", str(signed_file), "--public-key", str(key_file))
    assert trusted.exit_code == 0, trusted.output
    assert "note:" not in trusted.stdout
    # The same file anchors the live trail: its checkpoint must still be there and hold.
    anchored = run(app, "verify-audit", "--checkpoints", str(signed_file))
    assert anchored.exit_code == 0, anchored.output
    assert "checkpoints kept outside the database: 1 verified" in anchored.stdout
    offline.extensions["armslength"].engine.dispose()


def test_verify_disclosure_fails_on_edited_content_or_another_key(app, signed_file, tmp_path):
    bundle = json.loads(signed_file.read_text())

    def check(changed: dict, *extra: str):
        path = tmp_path / "changed.json"
        path.write_text(json.dumps(changed))
        return run(app, "verify-disclosure", str(path), *extra)

    edited = {**bundle, "content": bundle["content"].replace("Conflict", "Kconflict")}
    result = check(edited)
    assert result.exit_code == 1 and "disclosure NOT verified" in result.stderr
    assert "the content's SHA-256 is" in result.stderr

    # Content and its hash edited together: the signature covers the real hash.
    rehashed = {**edited, "content_hash": checkpoints.content_hash(edited["content"])}
    result = check(rehashed)
    assert result.exit_code == 1
    assert "the checkpoint signed a different content hash" in result.stderr

    # ...and the checkpoint's content hash too: the signature no longer verifies.
    resigned = {**rehashed, "checkpoint": {**bundle["checkpoint"],
                                           "content_hash": rehashed["content_hash"]}}
    result = check(resigned)
    assert result.exit_code == 1 and "signature does not verify" in result.stderr

    # A file re-signed by someone else's key verifies only under that key, not the org's.
    other = Ed25519PrivateKey.generate()
    cp = dict(resigned["checkpoint"])
    cp["public_key"] = public_hex(other.public_key())
    cp["key_id"] = key_id(cp["public_key"])
    cp["signature"] = other.sign(checkpoints.message(
        cp["length"], cp["head"], cp["signed_at"], cp["disclosure_id"], cp["content_hash"])).hex()
    forged = {**resigned, "checkpoint": cp}
    assert check(forged).exit_code == 0  # self-consistent, under the key inside the file
    org_key = tmp_path / "org.pub"
    org_key.write_text(bundle["checkpoint"]["public_key"])
    result = check(forged, "--public-key", str(org_key))
    assert result.exit_code == 1
    assert f"signed by key {cp['key_id']}, not by the public key you trust" in result.stderr

    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    result = run(app, "verify-disclosure", str(junk))
    assert result.exit_code == 1 and "not a signed disclosure file" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_the_openssl_steps_of_docs_verify_md_check_the_signature(signed_file, tmp_path):
    """docs/verify.md's openssl recipe, run as written: the message from the file, the raw
    public key wrapped in its fixed DER prefix, the signature from hex."""
    bundle = json.loads(signed_file.read_text())
    cp = bundle["checkpoint"]
    (tmp_path / "message.txt").write_text(cp["message"])
    (tmp_path / "sig.bin").write_bytes(bytes.fromhex(cp["signature"]))
    (tmp_path / "pub.der").write_bytes(bytes.fromhex("302a300506032b6570032100" + cp["public_key"]))

    def pkeyutl(message: str):
        return subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
             "-rawin", "-in", message, "-sigfile", "sig.bin"],
            cwd=tmp_path, capture_output=True, text=True, check=False)

    good = pkeyutl("message.txt")
    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout
    (tmp_path / "forged.txt").write_text(cp["message"].replace("length ", "length 1"))
    assert pkeyutl("forged.txt").returncode != 0


# --- the commands ---------------------------------------------------------------------------------

def test_audit_keygen_writes_a_private_key_file_once(app, tmp_path):
    path = tmp_path / "signing.pem"
    result = run(app, "audit-keygen", str(path))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    public = result.stdout.split("public key: ")[1].split()[0]
    assert f"key id:     {key_id(public)}" in result.stdout

    before = path.read_bytes()
    again = run(app, "audit-keygen", str(path))
    assert again.exit_code == 1 and "exists; a key file is never overwritten" in again.stderr
    assert path.read_bytes() == before

    # The key works: an app configured with it signs checkpoints under that public key.
    signer = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True,
                         "SECRET_KEY": "test-secret-key-not-for-production",
                         "AUDIT_SIGNING_KEY_FILE": str(path)})
    more_entries(signer, 1)
    assert checkpoint(signer)["public_key"] == public
    signer.extensions["armslength"].engine.dispose()


def test_an_unreadable_key_stops_the_app(database_url, tmp_path):
    from app.config import ConfigError

    settings = {"DATABASE_URL": database_url, "TESTING": True,
                "SECRET_KEY": "test-secret-key-not-for-production"}
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY_FILE .*missing.pem"):
        create_app({**settings, "AUDIT_SIGNING_KEY_FILE": str(tmp_path / "missing.pem")})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        create_app({**settings, "AUDIT_SIGNING_KEY_FILE": str(bad)})
    with pytest.raises(ConfigError, match="AUDIT_TRUSTED_KEYS"):
        create_app({**settings, "AUDIT_TRUSTED_KEYS": "abc"})


def test_checkpoints_are_append_only_in_the_orm(app, audit_key, ledger):
    from models.gifts import AppendOnlyViolation

    checkpoint(app)
    with app.extensions["armslength"].sessions() as session:
        cp = session.execute(select(AuditCheckpoint)).scalar_one()
        cp.length = 1
        with pytest.raises(AppendOnlyViolation):
            session.flush()


def test_the_python_recipe_of_docs_verify_md_runs_as_written(signed_file, audit_key, tmp_path):
    from app import ROOT

    doc = (ROOT / "docs" / "verify.md").read_text(encoding="utf-8")
    recipe = doc.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "check.py"
    script.write_text(recipe)

    def check(path):
        return subprocess.run([sys.executable, str(script), str(path), audit_key.public_key],
                              capture_output=True, text=True, check=False)

    good = check(signed_file)
    assert good.returncode == 0, good.stderr
    bundle = json.loads(signed_file.read_text())
    assert good.stdout.strip() == f"verified: {bundle['content_hash']}"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**bundle, "content": bundle["content"] + " "}))
    assert check(edited).returncode != 0


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="TEST_DATABASE_URL not set")
def test_postgresql_refuses_to_edit_or_delete_a_checkpoint(tmp_path):
    """Migration 0011's trigger: the database itself refuses, not only the ORM."""
    from alembic import command

    from tests.test_migrations import _config

    with empty_database("postgresql", tmp_path, "checkpoints") as url:
        engine = create_engine(url)
        try:
            command.upgrade(_config(engine), "head")
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO audit_checkpoint (length, entry_id, head, signed_at, key_id, "
                    "public_key, signature) VALUES (1, 1, :h, now(), :k, :p, :s)"),
                    {"h": "a" * 64, "k": "b" * 16, "p": "c" * 64, "s": "d" * 128})
            for statement in ("UPDATE audit_checkpoint SET length = 2",
                              "DELETE FROM audit_checkpoint"):
                with pytest.raises(DBAPIError, match="audit_checkpoint is append-only"):
                    with engine.begin() as conn:
                        conn.execute(text(statement))
        finally:
            engine.dispose()
