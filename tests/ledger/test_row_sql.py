"""The database computes the row hashes verification compares (app.ledger.row_sql); they must
be exactly the hashes Python computes from the same rows (app.ledger.row_hashes), for every
sealed table, awkward values included, or verification would cry wolf or, worse, agree
with a row Python would not. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    select,
)

from app.ledger import row_sql
from app.ledger.row_hashes import SEALED, canonical, read_columns, stored_row_hash
from app.ledger.row_verify import UNREADABLE, _digests
from tests.builders import World, affiliate, gift, ok, person
from tests.tampering import tamper_apart

DAY = "2026-03-01"

#: Every character JSON escapes, quotes, a backslash, and text beyond ASCII.
AWKWARD = ('q"uo\\te\x01\x08\t\n\x0b\x0c\r\x1f\x7f é € \u2028 \U0001f600 '
           + "".join(chr(i) for i in range(1, 32)))


def _python_digests(conn, sealed) -> dict[int, str]:
    id_at = sealed.columns.index(sealed.key)
    return {row[id_at]: stored_row_hash(sealed, row)
            for row in conn.execute(select(*read_columns(sealed)))}


def _compare(database_url: str) -> dict[str, int]:
    """Rows per table whose database and Python hashes were compared; fails on a difference."""
    engine = create_engine(database_url)
    compared = {}
    try:
        with engine.connect() as conn:
            row_sql.prepare(conn)
            for table, sealed in sorted(SEALED.items()):
                python = _python_digests(conn, sealed)
                by_database = dict(_digests(conn, sealed, batch=7))
                assert by_database == python, table
                compared[table] = len(python)
    finally:
        engine.dispose()
    return compared


@pytest.fixture
def ledger(api, api_as):
    """Rows in most sealed tables: organisations, donors, an affiliation, gifts with their
    decisions and attributions, a refund, a review, and the public-support facts (a link,
    a class, an unusual grant, and a removed link's record)."""
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    ok(api_as("finance").post(f"/gifts/{made['id']}/refund",
                              {"amount": "10.00", "refunded_on": DAY}))
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)
    ok(api_as("reviewer").post(f"/gifts/{held['id']}/review",
                               {"outcome": "accept", "reason": "fine by me"}))
    boss = person(api, "Bo Boss")
    affiliate(api, boss["id"], w.lab["id"], senior=True, title="VP")
    spouse = person(api, "Sam Spouse")
    reviewer = api_as("reviewer")
    ok(reviewer.post("/public-support/links", {
        "donor_id": w.donor["id"], "other_donor_id": spouse["id"], "relation": "spouse",
        "reason": AWKWARD}))
    gone = ok(reviewer.post("/public-support/links", {
        "donor_id": boss["id"], "other_donor_id": spouse["id"], "relation": "family",
        "reason": "cousins"}))
    ok(reviewer.delete(f"/public-support/links/{gone['id']}", json={"reason": "not cousins"}),
       200)
    ok(reviewer.post("/public-support/classes", {
        "donor_id": boss["id"], "support_class": "public_charity", "reason": "IRS letter é"}))
    ok(reviewer.post("/public-support/unusual-grants", {
        "gift_id": made["id"], "reason": "a bequest\nfrom a stranger"}))
    return {"gift": made["id"], "held": held["id"]}


def test_the_database_hashes_every_sealed_row_as_python_does(ledger, database_url):
    compared = _compare(database_url)
    for table in ("organization", "donor", "affiliation", "gift", "decision", "attribution",
                  "refund", "support_link", "support_class", "unusual_grant",
                  "support_fact_removal"):
        assert compared[table] > 0, table


def test_awkward_text_and_instants_hash_alike(ledger, database_url):
    """Every escaped character in text and JSON columns, NULLs, an instant on a whole second
    (no microseconds to print) and one in another zone on PostgreSQL."""
    tamper_apart(
        database_url,
        ("UPDATE gift SET description = :awkward, external_ref = NULL WHERE id = :id",
         {"awkward": AWKWARD, "id": ledger["gift"]}),
        ("UPDATE decision SET note = :awkward, reasons = :json WHERE gift_id = :id",
         {"awkward": AWKWARD, "json": json.dumps([AWKWARD, {"z": 1, "a": None}]),
          "id": ledger["held"]}),
        ("UPDATE organization SET aliases = :json",
         {"json": '{"b": "\\u00e9 \\"x\\"", "a": [1, 2.5, null, true]}'}),
    )
    if database_url.startswith("postgresql"):
        tamper_apart(database_url,
                     "UPDATE gift SET created_at = '2026-03-01 23:30:00-05:00', "
                     "received_on = '0999-01-02'",
                     "UPDATE affiliation SET created_at = '2026-03-01 00:00:00+00'")
    else:
        tamper_apart(database_url,
                     "UPDATE gift SET created_at = '2026-03-02 04:30:00.000000', "
                     "received_on = '0999-01-02'",
                     "UPDATE affiliation SET created_at = '2026-03-01 00:00:00.000000'")
    _compare(database_url)


# SQLite only (its dynamic typing): not parametrised over PostgreSQL at all, so no
# PostgreSQL case is skipped (CI counts those).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("statement", [
    "UPDATE gift SET disclose = 2",  # a boolean Python reads as true
    "UPDATE gift SET amount_minor = amount_minor + 0.5",  # a real in an integer column
    "UPDATE gift SET created_at = '2026-03-01 10:00:00'",  # an instant without microseconds
    "UPDATE gift SET created_at = '2026-03-01T10:00:00.000000+00:00'",
    "UPDATE gift SET received_on = '2026-02-29'",  # not a date (SQLite's date() takes it)
])
def test_sqlite_values_stored_otherwise_are_hashed_by_python(ledger, database_url, statement):
    """SQLite keeps whatever it is given; where a value is not in the form the app writes,
    the SQL leaves the row's hash to Python, which reads it as the app does (or fails as
    the app would: a 29 February 2026 is no date)."""
    tamper_apart(database_url, statement)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row_sql.prepare(conn)
            sealed = SEALED["gift"]
            spelled = dict(conn.execute(row_sql.digest_query(sealed, "sqlite")).all())
            assert None in spelled.values()  # the SQL declined these rows
            if "02-29" in statement:
                with pytest.raises(ValueError):
                    _python_digests(conn, sealed)
                # Verification names the row instead of failing with it (row_verify).
                assert UNREADABLE in dict(_digests(conn, sealed, batch=7)).values()
                return
    finally:
        engine.dispose()
    _compare(database_url)


def test_the_canonical_text_is_python_s(ledger, database_url):
    """Not only the hashes: the text the database spells is row_hashes.canonical()'s."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            spelled_tables = set()
            for sealed in SEALED.values():
                query = row_sql.canonical_query(sealed, conn.dialect.name)
                if query is None:  # a type SQL does not spell: _compare covers its Python path
                    continue
                spelled_tables.add(sealed.table)
                columns = sealed.model.__table__.c
                rows = conn.execute(select(*[columns[c] for c in sealed.columns])).mappings()
                python = {row[sealed.key]: canonical(sealed, row) for row in rows}
                spelled = dict(conn.execute(query).all())
                assert spelled == python, sealed.table
            # The large tables, at least, are hashed by the database.
            assert {"gift", "decision", "attribution", "donor", "refund", "support_link",
                    "support_class", "unusual_grant", "support_fact_removal"} <= spelled_tables
    finally:
        engine.dispose()


def test_types_sql_might_spell_otherwise_are_left_to_python():
    table = Table("t", MetaData(), Column("f", Float), Column("n", Numeric),
                  Column("e", Enum("a", "b")), Column("v", String), Column("d", Date),
                  Column("naive", DateTime))
    kinds = {c.name: row_sql._kind(c) for c in table.columns}
    assert kinds == {"f": None, "n": None, "e": None, "v": "text", "d": "date",
                     "naive": "naive"}
