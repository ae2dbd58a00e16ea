"""Row hashes computed by the database, for verification (app.ledger.row_verify).

row_hashes.canonical() spells a row as JSON in Python; reading every row into Python
objects and encoding it there was most of the row check's time. Here the same bytes are
spelled in SQL, column by column from the registry (row_hashes.SEALED), so the database
builds the text (PostgreSQL also hashes it, with sha256(); SQLite hands the text to one
small Python function) and only (id, hash) pairs come back.

The canonical form does not change: the SQL spelling must give exactly
row_hashes.canonical()'s text, and tests hold it to that for every sealed table
(tests/ledger/test_row_sql.py). Where SQL could differ from Python it is not used:

- a column type this module does not know (a float, an enum, another TypeDecorator):
  the whole table is hashed in Python, as before;
- a row with a column set that the table gained after it was first sealed
  (row_hashes.Sealed.later): the SQL gives NULL for that row, and Python hashes it;
- on SQLite, a stored value not in the exact form the app writes (an integer in a text
  column, a date spelled differently, a boolean other than 0 or 1): the SQL gives NULL
  for that row and row_verify hashes it in Python. So SQL only ever answers where its
  answer is Python's.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Connection
from sqlmodel import AutoString
from sqlmodel.sql.sqltypes import UTCDateTime

from app.ledger.row_hashes import Sealed

#: SQLite's name for the hash function registered on the connection (sqlite_hash()).
SQLITE_SHA256 = "armslength_sha256"

_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_INSTANT_GLOB = _DATE_GLOB + " [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]"


def _kind(column) -> str | None:
    """The column's kind for spelling, or None if SQL cannot be trusted to spell it."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "instant"
    if isinstance(kind, AutoString):
        return "text"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, (Integer, BigInteger, SmallInteger)):
        return "int"
    if isinstance(kind, DateTime):
        return "instant" if kind.timezone else "naive"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Enum):
        return None  # a String subclass whose values Python would not read as plain text
    if isinstance(kind, (String, Text)) and type(kind) in (String, Text):
        return "text"
    return None


def _postgresql(kind: str, c: str) -> str:
    """The column's canonical JSON text in PostgreSQL (never NULL: 'null')."""
    if kind == "int":
        value = f"{c}::text"
    elif kind == "bool":
        value = f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
    elif kind in ("text", "json"):
        # to_json escapes strings as Python's json does with ensure_ascii=False (the
        # tests hold them equal over every ASCII character and beyond).
        value = f"to_json({c}::text)::text"
    elif kind == "date":
        value = _finite(c, f"'\"' || to_char({c}, 'YYYY-MM-DD') || '\"'")
    else:  # an instant: UTC, microseconds always, "+00:00" (row_hashes._plain)
        at = f"{c} AT TIME ZONE 'UTC'" if kind == "instant" else c
        value = _finite(c, f"'\"' || to_char({at}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00\"'")
    return f"coalesce({value}, 'null')"


def _finite(c: str, spelled: str) -> str:
    """PostgreSQL's 'infinity' has no to_char (NULL): it must not read as a sealed NULL. It
    gets a spelling no seal can have, so the row reads as changed (review finding)."""
    return f"CASE WHEN isfinite({c}) THEN {spelled} WHEN {c} IS NOT NULL THEN '\"not finite\"' END"


def _sqlite(kind: str, c: str) -> tuple[str, str]:
    """(the value to put in json_array(), a condition that it is stored in the form the app
    writes, so that the value is what Python would read and encode)."""
    if kind == "int":
        return c, f"typeof({c}) IN ('integer', 'null')"
    if kind == "bool":
        return (f"CASE {c} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END",
                f"(typeof({c}) = 'null' OR typeof({c}) = 'integer' AND {c} IN (0, 1))")
    if kind in ("text", "json"):
        return c, f"typeof({c}) IN ('text', 'null')"
    if kind == "date":
        return c, f"({c} IS NULL OR {c} GLOB '{_DATE_GLOB}' AND date(julianday({c})) = {c})"
    # An instant: stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC (SQLAlchemy's SQLite format).
    # julianday() and back: SQLite's date functions otherwise accept a 30 February.
    return (f"substr({c}, 1, 10) || 'T' || substr({c}, 12) || '+00:00'",
            f"({c} IS NULL OR {c} GLOB '{_INSTANT_GLOB}' "
            f"AND datetime(julianday(substr({c}, 1, 19))) = substr({c}, 1, 19))")


def _canonical(sealed: Sealed, dialect: str) -> tuple[str, str] | None:
    """(SQL for the row's canonical text, SQL for "SQL spells this row as Python does"), or
    None where the table cannot be spelled in SQL."""
    table = sealed.model.__table__
    if sealed.key not in sealed.columns or dialect not in ("postgresql", "sqlite"):
        return None
    if sealed.keyed:
        # An HMAC in SQL would need the key in the statement (and so, perhaps, in the
        # database's logs): keyed seals are checked in Python.
        return None
    first = sealed.columns[:sealed.first]
    kinds = [_kind(table.c[name]) for name in first]
    if None in kinds:
        return None
    name = sealed.table.replace("'", "''")
    columns = [quote(c) for c in first]
    # A row with a later column set (row_hashes.Sealed.later: few) is hashed in Python.
    unset = [f"{quote(c)} IS NULL" for c in sealed.later]
    if dialect == "postgresql":
        body = " || ',' || ".join(_postgresql(k, c) for k, c in zip(kinds, columns, strict=True))
        return (f"'[' || to_json('{name}'::text)::text || ',' || {body} || ']'",
                " AND ".join(unset) or "true")
    spelled = [_sqlite(k, c) for k, c in zip(kinds, columns, strict=True)]
    values = ", ".join(value for value, _ in spelled)
    return (f"json_array('{name}', {values})",
            " AND ".join([*(condition for _, condition in spelled), *unset]))


def _select_sql(sealed: Sealed, value: str) -> str:
    # Only names from the models' metadata and this module's own SQL; no input. The key is
    # the row's integer id ("id", or donor_id / gift_id / duplicate_id: row_hashes.Sealed).
    return f"SELECT {quote(sealed.key)} AS k, {value} AS v FROM {quote(sealed.table)}"  # noqa: S608  # nosec B608


def _select(sealed: Sealed, value: str):
    return text(f"{_select_sql(sealed, value)} ORDER BY {quote(sealed.key)}")


def digest_sql(sealed: Sealed, dialect: str) -> str | None:
    """SELECT k (the row's key), v (its hash) FROM the table, in no order, the hash computed
    by the database; None where the table cannot be spelled in SQL (hash it in Python). On
    SQLite a row's hash is NULL where SQL might not read it as Python does."""
    spelled = _canonical(sealed, dialect)
    if spelled is None:
        return None
    canonical, plain = spelled
    if dialect == "postgresql":
        digest = f"encode(sha256(convert_to({canonical}, 'UTF8')), 'hex')"
        return _select_sql(sealed, digest if plain == "true"
                           else f"CASE WHEN {plain} THEN {digest} END")
    return _select_sql(sealed, f"CASE WHEN {plain} THEN {SQLITE_SHA256}({canonical}) END")


def digest_query(sealed: Sealed, dialect: str):
    """digest_sql's rows ORDER BY key (None where the table cannot be spelled in SQL)."""
    sql = digest_sql(sealed, dialect)
    return None if sql is None else text(f"{sql} ORDER BY {quote(sealed.key)}")


def canonical_query(sealed: Sealed, dialect: str):
    """SELECT id, canonical text (NULL where SQL does not spell the row), for the tests
    that hold it to row_hashes.canonical()."""
    spelled = _canonical(sealed, dialect)
    if spelled is None:
        return None
    canonical, plain = spelled
    return _select(sealed, f"CASE WHEN {plain} THEN {canonical} END")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sha256_hex(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def prepare(conn: Connection) -> None:
    """Register the hash function on a SQLite connection (PostgreSQL has sha256())."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.create_function(
            SQLITE_SHA256, 1, _sha256_hex, deterministic=True)
