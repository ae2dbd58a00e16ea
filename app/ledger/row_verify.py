"""Verification of the live ledger rows against the row hashes in the audit chain.

For every sealed table (app.ledger.row_hashes.SEALED) it reads the rows in id order and the
latest seal of each row in the same order, both streamed in batches, and merges the two:

- "content differs": the row's hash now is not the one its latest audit entry recorded;
- "no audit entry": no entry ever sealed the row (inserted behind the app's back, or a
  tail of entries deleted: the rows they sealed lose their seal);
- "row gone": an entry sealed the row and it no longer exists (deleted behind the app's
  back; the app deletes no sealed row).

It reads one consistent snapshot (REPEATABLE READ on PostgreSQL; one read transaction on
SQLite), so writes committed meanwhile are not mistaken for tampering. Whether the entries
themselves are intact is the chain's verification (app.ledger.audit.verify_chain).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

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


#: The latest seal of every sealed row, ordered by table (byte order) and row id.
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

_END = (None, None, None, None)

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
    """Merge every sealed table's rows with their latest seals; yield each finding with the
    row's hash as it is now (None for a row gone). Counts the rows in report.rows."""
    row_sql.prepare(conn)
    seals = _stream(conn, _LATEST_SEALS[conn.dialect.name], batch)
    seal = next(seals, _END)
    for table in sorted(SEALED):
        # Seals of tables this version does not seal (sorting before this one): ignored.
        while seal[0] is not None and seal[0] < table:
            seal = next(seals, _END)
        # A keyed seal is a second seal of rows counted under their table's plain one.
        counted = not SEALED[table].keyed
        for row_id, digest in _digests(conn, SEALED[table], batch):
            while seal[0] == table and seal[1] < row_id:
                if seal[3] is not None:  # None: the app removed the row (row_hashes.removed)
                    yield RowFinding(table, seal[1], ROW_GONE, seal[2]), None
                seal = next(seals, _END)
            report.rows += counted
            if seal[0] == table and seal[1] == row_id:
                if digest != seal[3]:
                    yield RowFinding(table, row_id, CONTENT_DIFFERS, seal[2]), digest
                seal = next(seals, _END)
            else:
                yield RowFinding(table, row_id, NO_ENTRY, None), digest
        while seal[0] == table:
            if seal[3] is not None:
                yield RowFinding(table, seal[1], ROW_GONE, seal[2]), None
            seal = next(seals, _END)


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
            try:
                row = conn.execute(select(*read_columns(sealed))
                                   .where(columns[sealed.key] == row_id)).one()
                digest = stored_row_hash(sealed, row)
            except (ValueError, OverflowError):
                # A value no column of its type can hold ('infinity' typed into a date on
                # SQLite): no seal was ever made of it, so the row reads as changed.
                digest = UNREADABLE
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
