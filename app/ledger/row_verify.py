"""Verification of the live ledger rows against the row hashes in the audit chain.

For every sealed table (app.ledger.row_hashes.SEALED) it compares each live row's hash now
with the latest seal of that row, and reports:

- "content differs": the row's hash now is not the one its latest audit entry recorded;
- "no audit entry": no entry ever sealed the row (inserted behind the app's back, or a
  tail of entries deleted: the rows they sealed lose their seal);
- "row gone": an entry sealed the row and it no longer exists (deleted behind the app's
  back; the app deletes no sealed row).

How (measured in docs/performance.md, "The row check in the database"): the seals of every
entry are read out of the JSON once, into a temporary table indexed by (table, row id);
then, for each table the database can hash (app.ledger.row_sql), one statement joins its
rows' hashes with their latest seals and returns only the rows that differ, so neither the
rows nor the seals travel to Python. Tables hashed in Python (keyed seals, types SQL does
not spell) are merged here with their latest seals, both in id order. A role without the
right to create a temporary table (PostgreSQL's TEMPORARY privilege) gets the same answer
from the previous way: all latest seals in one sorted stream, merged here with every
table's rows (_walk_sorted).

It reads one consistent snapshot (REPEATABLE READ on PostgreSQL; one read transaction on
SQLite), so writes committed meanwhile are not mistaken for tampering. Whether the entries
themselves are intact is the chain's verification (app.ledger.audit.verify_chain).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from app.ledger import row_sql
from app.ledger.row_hashes import SEALED, Sealed, read_columns, stored_row_hash

CONTENT_DIFFERS = "content differs"
NO_ENTRY = "no audit entry"
ROW_GONE = "row gone"
PROBLEMS = (CONTENT_DIFFERS, NO_ENTRY, ROW_GONE)

#: Findings listed in a report; beyond this only the counts grow (a ledger sealed from
#: scratch after an upgrade could otherwise list every row).
MAX_FINDINGS = 1000


@dataclass(frozen=True)
class RowFinding:
    table: str
    id: int
    problem: str
    #: The latest audit entry that sealed the row (None: no entry did).
    entry_id: int | None

    def public(self) -> dict:
        return {"table": self.table, "id": self.id, "problem": self.problem,
                "entry_id": self.entry_id}

    def __str__(self) -> str:
        entry = f" (audit entry #{self.entry_id})" if self.entry_id is not None else ""
        return f"{self.table} {self.id}: {self.problem}{entry}"


@dataclass
class RowsReport:
    #: Live rows of sealed tables checked (a row with a keyed seal besides counts once).
    rows: int = 0
    #: Findings, in table then id order, at most MAX_FINDINGS of them.
    findings: list[RowFinding] = field(default_factory=list)
    #: How many of each problem, however many were listed.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROBLEMS, 0))

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def add(self, finding: RowFinding) -> None:
        self.counts[finding.problem] += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)


#: The latest seal of every sealed row, ordered by table (byte order) and row id: the check
#: where the role may not create a temporary table (_walk_sorted).
_LATEST_SEALS = {
    "postgresql": text("""
        SELECT DISTINCT ON (t, row_id) t, row_id, entry_id, hash FROM (
            SELECT (r.value ->> 0) COLLATE "C" AS t, (r.value ->> 1)::bigint AS row_id,
                   e.id AS entry_id, r.value ->> 2 AS hash
            FROM audit_entry e CROSS JOIN LATERAL json_array_elements(e.row_hashes) AS r(value)
            WHERE json_typeof(e.row_hashes) = 'array') s
        ORDER BY t, row_id, entry_id DESC"""),
    # SQLite: with max(), the other bare columns come from the row holding the maximum.
    "sqlite": text("""
        SELECT json_extract(r.value, '$[0]') AS t, json_extract(r.value, '$[1]') AS row_id,
               max(e.id) AS entry_id, json_extract(r.value, '$[2]') AS hash
        FROM audit_entry e, json_each(e.row_hashes) AS r
        WHERE json_type(e.row_hashes) = 'array'
        GROUP BY t, row_id
        ORDER BY t, row_id"""),
}

#: The seals of every audit entry, one row each, into a temporary table (armslength_seal) that lives
#: as long as the check: read out of the JSON once, then each table's latest seals are read
#: from it by the index (t, row_id), never by sorting every seal of the trail.
#: Named in the session's own temporary schema: never a table of the database of that name.
#: Every statement names it in that schema (PostgreSQL's search_path is the role's to set, and
#: could put a table or view of that name first).
_SEALS_TABLE = {"postgresql": "pg_temp.armslength_seal", "sqlite": "armslength_seal"}
_DROP_SEALS = {"postgresql": "DROP TABLE IF EXISTS pg_temp.armslength_seal",
               "sqlite": "DROP TABLE IF EXISTS temp.armslength_seal"}
_CREATE_SEALS = {
    "postgresql": "CREATE TEMPORARY TABLE armslength_seal (t text COLLATE \"C\", row_id bigint, "
                  "entry_id bigint, hash text) ON COMMIT DROP",
    "sqlite": "CREATE TEMPORARY TABLE armslength_seal (t TEXT, row_id INTEGER, entry_id INTEGER, "
              "hash TEXT)",
}
_LOAD_SEALS = {
    "postgresql": """
        INSERT INTO pg_temp.armslength_seal (t, row_id, entry_id, hash)
        SELECT r.value ->> 0, (r.value ->> 1)::bigint, e.id, r.value ->> 2
        FROM audit_entry e CROSS JOIN LATERAL json_array_elements(e.row_hashes) AS r(value)
        WHERE json_typeof(e.row_hashes) = 'array'""",
    "sqlite": """
        INSERT INTO armslength_seal (t, row_id, entry_id, hash)
        SELECT json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'), e.id,
               json_extract(r.value, '$[2]')
        FROM audit_entry e, json_each(e.row_hashes) AS r
        WHERE json_type(e.row_hashes) = 'array'""",
}
#: One table's latest seal of each row (:t the table's seal name), as (row_id, entry_id, hash),
#: in row id order.
_LATEST = {
    "postgresql": """
        SELECT DISTINCT ON (row_id) row_id, entry_id, hash FROM pg_temp.armslength_seal
        WHERE t = :t
        ORDER BY row_id, entry_id DESC""",
    "sqlite": """
        SELECT row_id, entry_id, hash FROM armslength_latest WHERE t = :t ORDER BY row_id""",
}
#: SQLite joins a subquery by scanning it for every row (quadratic): the latest seals of all
#: tables go into a second temporary table, indexed by (t, row_id), read in the index's order
#: (with max(), the other bare columns come from the row holding the maximum).
_SQLITE_LATEST = (
    "DROP TABLE IF EXISTS temp.armslength_latest",
    "CREATE TEMPORARY TABLE armslength_latest (t TEXT, row_id INTEGER, entry_id INTEGER, "
    "hash TEXT)",
    "INSERT INTO armslength_latest SELECT t, row_id, max(entry_id), hash FROM armslength_seal "
    "GROUP BY t, row_id",
    "CREATE INDEX ix_armslength_latest ON armslength_latest (t, row_id)",
)
#: One table's rows (their hashes computed by the database, row_sql.digest_sql) joined with
#: their latest seals, in the database: only what differs comes back, by id, as (id, live:
#: the row exists, its hash now, the latest seal's entry id, the sealed hash). A seal of a
#: row the app removed (hash NULL) comes back too; the walk skips it.
_DIFFERENCES = {
    "postgresql": """
        SELECT coalesce(l.k, s.row_id) AS id, l.k IS NOT NULL AS live, l.v, s.entry_id, s.hash
        FROM ({rows}) AS l FULL JOIN ({latest}) AS s ON s.row_id = l.k
        WHERE l.k IS NULL OR s.row_id IS NULL OR l.v IS NULL OR s.hash IS NULL
           OR l.v <> s.hash
        ORDER BY 1""",
    # The rows (each looking up its latest seal by the index), then the seals whose row is
    # gone (each looking up the row by its key).
    "sqlite": """
        SELECT l.k AS id, 1 AS live, l.v, s.entry_id, s.hash
        FROM ({rows}) AS l LEFT JOIN armslength_latest AS s ON s.t = :t AND s.row_id = l.k
        WHERE s.row_id IS NULL OR l.v IS NULL OR s.hash IS NULL OR l.v <> s.hash
        UNION ALL
        SELECT s.row_id, 0, NULL, s.entry_id, s.hash FROM armslength_latest AS s
        WHERE s.t = :t AND NOT EXISTS (SELECT 1 FROM {table} AS r WHERE r.{key} = s.row_id)
        ORDER BY 1""",
}
_END = (None, None, None)

#: The "hash" of a row whose stored values cannot be read as their column's type.
UNREADABLE = "unreadable"


def verify_rows(session: Session, batch: int = 10_000) -> RowsReport:
    """Compare every live row of every sealed table with its latest seal (see the module)."""
    return verify_rows_of(session.get_bind(), batch)


def verify_rows_of(engine: Engine, batch: int = 10_000) -> RowsReport:
    """verify_rows on a connection of its own from the engine (any thread may call it)."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        return _verify(conn, batch)


def _verify(conn: Connection, batch: int) -> RowsReport:
    report = RowsReport()
    for finding, _digest in _walk(conn, batch, report):
        report.add(finding)
    return report


def _walk(conn: Connection, batch: int, report: RowsReport) -> Iterator[tuple[RowFinding, str | None]]:
    """Every sealed table's rows against their latest seals; yield each finding with the
    row's hash as it is now (None for a row gone). Counts the rows in report.rows."""
    row_sql.prepare(conn)
    if _may_create_temporary(conn):
        return _walk_in_database(conn, batch, report)
    return _walk_sorted(conn, batch, report)


def _may_create_temporary(conn: Connection) -> bool:
    """Whether this session may create a temporary table (PostgreSQL's TEMPORARY privilege on
    the database, which docs/deployment.md grants to the app's role, outside a read-only
    transaction)."""
    if conn.dialect.name != "postgresql":
        return conn.dialect.name == "sqlite"
    # Not in a read-only transaction either (a read-only auditor's role, a standby), where
    # PostgreSQL refuses CREATE TEMPORARY TABLE: the sorted merge needs no table.
    return bool(conn.exec_driver_sql(
        "SELECT has_database_privilege(current_database(), 'TEMPORARY') "
        "AND current_setting('transaction_read_only') = 'off'").scalar_one())


def _walk_in_database(conn: Connection, batch: int,
                      report: RowsReport) -> Iterator[tuple[RowFinding, str | None]]:
    """The seals in a temporary table; each table the database can hash compared with its
    latest seals by the database (_DIFFERENCES), the others merged here (_merged)."""
    dialect = conn.dialect.name
    # Dropped first: one left by a check that failed half-way on this (pooled SQLite)
    # connection; on PostgreSQL it goes with the transaction in any case (ON COMMIT DROP).
    conn.exec_driver_sql(_DROP_SEALS[dialect])
    conn.exec_driver_sql(_CREATE_SEALS[dialect])
    conn.exec_driver_sql(_LOAD_SEALS[dialect])
    seals = _SEALS_TABLE[dialect]
    conn.exec_driver_sql(f"CREATE INDEX ix_armslength_seal ON {seals} (t, row_id, entry_id)")
    conn.exec_driver_sql(f"ANALYZE {seals}")
    if dialect == "sqlite":
        for statement in _SQLITE_LATEST:
            conn.exec_driver_sql(statement)
    for table in sorted(SEALED):
        sealed = SEALED[table]
        # A keyed seal is a second seal of rows counted under their table's plain one.
        counted = not sealed.keyed
        by_sql = row_sql.digest_sql(sealed, dialect)
        if by_sql is None:
            seals = _stream(conn, text(_LATEST[dialect]).bindparams(t=table), batch)
            yield from _merged(table, seals, _digests(conn, sealed, batch), report, counted)
            continue
        if counted:
            report.rows += conn.execute(text(
                f"SELECT count(*) FROM {row_sql.quote(table)}")).scalar_one()  # noqa: S608  # nosec B608 - a name from the models
        query = text(_DIFFERENCES[dialect].format(
            rows=by_sql, latest=_LATEST[dialect], table=row_sql.quote(table),
            key=row_sql.quote(sealed.key)))
        for row_id, live, digest, entry_id, sealed_hash in conn.execute(query, {"t": table}):
            if not live:
                if sealed_hash is not None:  # None: the app removed the row
                    yield RowFinding(table, row_id, ROW_GONE, entry_id), None
                continue
            if digest is None:  # SQLite: stored in a form SQL might read otherwise
                digest = _python_digest(conn, sealed, row_id)
            if entry_id is None:
                yield RowFinding(table, row_id, NO_ENTRY, None), digest
            elif digest != sealed_hash:
                yield RowFinding(table, row_id, CONTENT_DIFFERS, entry_id), digest
    conn.exec_driver_sql(_DROP_SEALS[dialect])
    if dialect == "sqlite":
        conn.exec_driver_sql(_SQLITE_LATEST[0])


def _walk_sorted(conn: Connection, batch: int,
                 report: RowsReport) -> Iterator[tuple[RowFinding, str | None]]:
    """Without a temporary table: the latest seals of all tables in one sorted stream
    (_LATEST_SEALS), merged here with each table's rows in id order."""
    groups = groupby(_stream(conn, _LATEST_SEALS[conn.dialect.name], batch), key=itemgetter(0))
    group = next(groups, _NO_GROUP)
    for table in sorted(SEALED):
        # Seals of tables this version does not seal (sorting before this one): ignored.
        while group[0] is not None and group[0] < table:
            group = next(groups, _NO_GROUP)
        seals = (seal[1:] for seal in group[1]) if group[0] == table else iter(())
        yield from _merged(table, seals, _digests(conn, SEALED[table], batch), report,
                           not SEALED[table].keyed)


_NO_GROUP = (None, iter(()))


def _merged(table: str, seals: Iterator[tuple], digests: Iterator[tuple[int, str]],
            report: RowsReport, counted: bool) -> Iterator[tuple[RowFinding, str | None]]:
    """One table's rows (id, hash now) merged with its latest seals (row id, entry id, hash),
    both in id order."""
    seal = next(seals, _END)
    for row_id, digest in digests:
        while seal[0] is not None and seal[0] < row_id:
            if seal[2] is not None:  # None: the app removed the row (row_hashes.removed)
                yield RowFinding(table, seal[0], ROW_GONE, seal[1]), None
            seal = next(seals, _END)
        report.rows += counted
        if seal[0] == row_id:
            if digest != seal[2]:
                yield RowFinding(table, row_id, CONTENT_DIFFERS, seal[1]), digest
            seal = next(seals, _END)
        else:
            yield RowFinding(table, row_id, NO_ENTRY, None), digest
    while seal[0] is not None:
        if seal[2] is not None:
            yield RowFinding(table, seal[0], ROW_GONE, seal[1]), None
        seal = next(seals, _END)


def _python_digest(conn: Connection, sealed: Sealed, row_id: int) -> str:
    """The row's hash computed here (its stored values read through their column types)."""
    columns = sealed.model.__table__.c
    try:
        row = conn.execute(select(*read_columns(sealed))
                           .where(columns[sealed.key] == row_id)).one()
        return stored_row_hash(sealed, row)
    except (ValueError, OverflowError):
        # A value no column of its type can hold ('infinity' typed into a date on
        # SQLite): no seal was ever made of it, so the row reads as changed.
        return UNREADABLE


def _digests(conn: Connection, sealed: Sealed, batch: int) -> Iterator[tuple[int, str]]:
    """(id, the row's hash now) of every row of the table, in id order: computed by the
    database where app.ledger.row_sql can spell the table, else read and hashed here."""
    columns = sealed.model.__table__.c
    by_sql = row_sql.digest_query(sealed, conn.dialect.name)
    if by_sql is None:
        id_at = sealed.columns.index(sealed.key)  # "id", or donor_merge's duplicate_id
        for row in _stream(conn, select(*read_columns(sealed)).order_by(columns[sealed.key]),
                           batch):
            yield row[id_at], stored_row_hash(sealed, row)
        return
    for row_id, digest in _stream(conn, by_sql, batch):
        if digest is None:  # stored in a form SQL might read otherwise: Python hashes it
            digest = _python_digest(conn, sealed, row_id)
        yield row_id, digest


def unsealed_rows(session: Session, batch: int = 10_000) -> list[list]:
    """Seals ([table, id, hash]) of the rows no audit entry has recorded, as they are now,
    read in the session's own transaction (the caller holds the ledger lock)."""
    return [[finding.table, finding.id, digest]
            for finding, digest in _walk(session.connection(), batch, RowsReport())
            if finding.problem == NO_ENTRY]


def _stream(conn: Connection, statement, batch: int) -> Iterator[tuple]:
    """The statement's rows as tuples, fetched `batch` at a time (a server-side cursor on
    PostgreSQL), never all in memory."""
    # On the statement, not the connection: Connection.execution_options() would change
    # the caller's connection for every statement after this one.
    result = conn.execute(statement.execution_options(stream_results=True))
    for rows in result.partitions(batch):
        yield from rows
