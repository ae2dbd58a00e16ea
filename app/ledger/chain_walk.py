"""The walk of the audit chain (audit.verify_chain), in parts, on two cores.

Each entry is checked against its predecessor's *stored* hash (audit.verify_chain says why
that is the same test as recomputing from the genesis hash), so the trail can be cut into
parts by position and each part walked on its own: a part checks every entry after its
first against the entry before it, and its first entry's content with that entry's own
stored prev_hash; the join then checks every part's first prev_hash against the previous
part's last stored hash (the genesis hash for the first part). The first failure in id
order is the one reported, with the count of entries before it, exactly as one walk
reports it (app.ledger.chain_hash.walk_rows walks a part; join() joins them).

A trail of PARALLEL_FROM entries or more, in a database another connection can see, is
walked by this process and one helper process (app/ledger/chain_part.py, run by path: the
standard library and the driver only, so it starts at once even on a loaded machine),
each taking parts from its own end of the trail, so neither waits long for the other.
The cuts come from one statement (count, max id, the ids at the cut positions); every part
reads only ids up to that max. Audit entries are appended under the ledger lock in id
order and never updated or deleted by the app, so any connection reads the same entries
with ids up to that max; should a part count otherwise (the trail edited while it is
verified), the whole trail is walked again in this process, in one part.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess  # nosec B404 - runs only our own helper file (chain_part.py)
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from app.ledger.audit import _AT_TEXT, _CHAIN_COLUMNS, ChainReport
from app.ledger.chain_hash import LINK_BROKEN, walk_rows
from models import GENESIS_HASH, AuditEntry

#: Trails this long or longer are walked on two processes (when the database allows).
PARALLEL_FROM = 40_000
#: Parts the trail is cut into for two processes: small enough that the one that finishes
#: first waits little for the other.
PARTS = 24

_HELPER = Path(__file__).resolve().parent / "chain_part.py"
#: Stand-ins for a part's bounds in the SQL handed to the helper (chain_part.py).
_LO, _HI = -7_700_000_001, -7_700_000_002


@dataclass(frozen=True)
class Part:
    """What a walk of one part found (chain_hash.walk_rows)."""

    #: Position (1-based, id order) of the part's first entry, minus one.
    start: int
    count: int = 0
    first_id: int | None = None
    #: The first entry's stored prev_hash and the last entry's stored hash.
    first_prev: str | None = None
    last_hash: str | None = None
    #: (entry id, problem, entries of this part before it): the part's first failure
    #: other than its first entry's link (which the join checks).
    failure: tuple[int, str, int] | None = None
    noted: dict[int, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, found: dict) -> Part:
        failure = found["failure"]
        return cls(found["start"], found["count"], found["first_id"], found["first_prev"],
                   found["last_hash"], tuple(failure) if failure is not None else None,
                   {int(p): tuple(at) for p, at in found["noted"].items()})


def _statement(dialect: str, lo: int, hi: int | None):
    at_text = _AT_TEXT.get(dialect, AuditEntry.at)
    statement = select(at_text, *_CHAIN_COLUMNS).where(AuditEntry.id > lo)
    if hi is not None:
        statement = statement.where(AuditEntry.id <= hi)
    return statement.order_by(AuditEntry.id)


def _sql(conn: Connection, lo: int, hi: int | None) -> str:
    # Only integers are spelled into it (the bounds).
    return str(_statement(conn.dialect.name, lo, hi).compile(
        dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def walk_part(conn: Connection, lo: int, hi: int | None, start: int, wanted: Iterable[int],
              batch: int = 10_000) -> Part:
    """Walk the entries with lo < id <= hi (hi None: to the end) on this connection, read as
    raw tuples from the driver's cursor (a server-side cursor on PostgreSQL)."""
    raw = conn.connection.driver_connection
    named = conn.dialect.name == "postgresql"
    cursor = raw.cursor(name="armslength_chain_walk") if named else raw.cursor()

    def at_of(entry_id: int, at) -> str:
        # SQLite's NULL for an instant not in SQLAlchemy's form: read through the column's
        # type, as the ORM (and so entry_hash) reads it.
        if at is None:
            at = conn.execute(select(AuditEntry.at).where(AuditEntry.id == entry_id)
                              ).scalar_one()
        return at.isoformat(timespec="microseconds")

    try:
        cursor.execute(_sql(conn, lo, hi))
        found = walk_rows(iter(lambda: cursor.fetchmany(batch), []), start, wanted, at_of)
    finally:
        cursor.close()
    return Part.of(found)


def join(parts: list[Part], note: bool) -> ChainReport:
    """One report from the parts, in id order (see the module)."""
    noted: dict[int, tuple[int, str]] = {}
    expected_prev = GENESIS_HASH
    count = 0
    failure: tuple[int, str] | None = None
    verified = 0
    for part in parts:
        if part.count == 0:
            continue
        if failure is None:
            if part.first_prev != expected_prev:
                failure, verified = (part.first_id, LINK_BROKEN), count
            elif part.failure is not None:
                failure, verified = part.failure[:2], count + part.failure[2]
        count += part.count
        noted.update(part.noted)
        expected_prev = part.last_hash
    if failure is None:
        return ChainReport(True, count, noted=noted, length=count)
    if not note:  # as a single walk that stops at the failure reports it
        return ChainReport(False, verified, *failure)
    return ChainReport(False, verified, *failure, noted=noted, length=count)


def cuts(conn: Connection, parts: int) -> tuple[list[tuple[int, int | None, int]], int]:
    """((lo, hi, start) of `parts` parts, the entries in all): equal ranges of ids up to the
    max id now, each part's start from a count of the ids in each range (one pass over the
    primary key's index)."""
    first, last, total = conn.execute(select(func.min(AuditEntry.id), func.max(AuditEntry.id),
                                             func.count(AuditEntry.id))).one()
    if not total:
        return [(0, None, 0)], 0
    width = -(-(last - first + 1) // parts)
    # Integer division on both databases (integer operands); only integers spelled in.
    counted = dict(conn.execute(text(
        "SELECT (id - :first) / :width AS k, count(*) FROM audit_entry WHERE id <= :last "
        "GROUP BY (id - :first) / :width"), {"first": first, "width": width, "last": last}).all())
    out, start = [], 0
    for k in range(parts):
        lo = first - 1 + k * width
        if lo >= last:
            break
        out.append((lo, min(lo + width, last), start))
        start += counted.get(k, 0)
    return out, total


def walk(conn: Connection, note: Iterable[int] | None, batch: int = 10_000,
         parallel_from: int = PARALLEL_FROM, parts: int = PARTS) -> ChainReport:
    """The chain's report (audit.verify_chain), walked in parts on two processes when the
    trail has at least `parallel_from` entries and the database is not an in-memory one."""
    wanted = sorted(note or ())
    url = conn.engine.url
    apart = (url.get_backend_name() in ("postgresql", "sqlite")
             and url.database not in (None, "", ":memory:"))
    todo, total = cuts(conn, parts) if apart else ([], 0)
    if total < parallel_from or len(todo) < 2:
        return join([walk_part(conn, 0, None, 0, wanted, batch)], note is not None)
    return walk_on_two(conn, wanted, note is not None, batch, todo)


def walk_in_parts(conn: Connection, note: Iterable[int] | None, parts: int,
                  batch: int = 10_000) -> ChainReport:
    """Every part in this process, one after the other (the tests of the cuts and the join)."""
    wanted = sorted(note or ())
    done = [walk_part(conn, lo, hi, start, wanted, batch)
            for lo, hi, start in cuts(conn, parts)[0]]
    return _checked(conn, done, wanted, note is not None, batch)


def _checked(conn: Connection, done: list[Part], wanted: list[int], note: bool,
             batch: int) -> ChainReport:
    # Each part must hold the entries its cut said, or the positions are off (the trail
    # changed under the walk): then the whole trail is walked in one part.
    for part, after in zip(done, done[1:], strict=False):
        if part.start + part.count != after.start:
            return join([walk_part(conn, 0, None, 0, wanted, batch)], note)
    return join(done, note)


def _helper_job(conn: Connection) -> dict:
    url = conn.engine.url
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    else:
        dsn = str(Path(url.database).resolve())
    sql = _sql(conn, _LO, _HI).replace(str(_LO), "{lo}").replace(str(_HI), "{hi}")
    return {"backend": url.get_backend_name(), "dsn": dsn, "sql": sql}


def walk_on_two(conn: Connection, wanted: list[int], note: bool, batch: int = 10_000,
                todo: list[tuple[int, int | None, int]] | None = None) -> ChainReport:
    """This process walks the parts (cuts()) from the front, the helper from the back."""
    todo = todo if todo is not None else cuts(conn, PARTS)[0]
    done: dict[int, Part] = {}
    front, back = 0, len(todo) - 1
    given: list[int] = []  # parts handed to the helper, in the order it answers them
    helper = subprocess.Popen([sys.executable, str(_HELPER)], stdin=subprocess.PIPE,  # noqa: S603  # nosec B603 - our own file, no input from outside
                              stdout=subprocess.PIPE, text=True, bufsize=0)
    try:
        helper.stdin.write(json.dumps(_helper_job(conn)) + "\n")
        answers = selectors.DefaultSelector()
        answers.register(helper.stdout, selectors.EVENT_READ)
        unread = b""  # read from the pipe with os.read: select() sees no buffered lines

        def answer(block: bool) -> dict | None:
            nonlocal unread
            while b"\n" not in unread:
                if not answers.select(None if block else 0):
                    return None
                more = os.read(helper.stdout.fileno(), 1 << 16)
                if not more:
                    raise RuntimeError("the chain walk's helper process stopped")
                unread += more
            line, unread = unread.split(b"\n", 1)
            return json.loads(line)

        def give() -> None:
            nonlocal back
            while len(given) < 2 and back > front:  # two queued: the helper never waits
                lo, hi, start = todo[back]
                helper.stdin.write(json.dumps([lo, hi, start, wanted]) + "\n")
                given.append(back)
                back -= 1
            helper.stdin.flush()

        def take(block: bool) -> None:
            while given and (found := answer(block)) is not None:
                index = given.pop(0)
                lo, hi, start = todo[index]
                # An instant only the app's column types can read: this process walks it.
                done[index] = (walk_part(conn, lo, hi, start, wanted, batch)
                               if found.get("needs_types") else Part.of(found))
                block = False

        give()
        while front <= back:
            lo, hi, start = todo[front]
            done[front] = walk_part(conn, lo, hi, start, wanted, batch)
            front += 1
            take(block=False)
            give()
        while given:
            take(block=True)
        answers.close()
        helper.stdin.close()
        helper.wait()
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        for pipe in (helper.stdin, helper.stdout):
            if not pipe.closed:
                pipe.close()
    return _checked(conn, [done[k] for k in range(len(todo))], wanted, note, batch)
