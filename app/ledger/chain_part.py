"""The chain walk's helper process (app.ledger.chain_walk): run by path, not imported, so
it starts in a fraction of a second without the app (standard library, the database
driver and app/ledger/chain_hash.py, loaded by path, only).

It reads one JSON line on stdin: {"backend": "postgresql"|"sqlite", "dsn": libpq
connection string or SQLite file path, "sql": the walk's SELECT with "{lo}" and "{hi}" for
the part's bounds}; then, per line, a part [lo, hi, start, wanted positions], and answers
each with one JSON line: chain_hash.walk_rows's result, or {"start": start, "needs_types":
true} where an instant needs the app's column types. End of input: it exits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[0:0] = [str(Path(__file__).resolve().parent)]
from chain_hash import NeedsTypes, walk_rows  # noqa: E402 - this file's own folder, by path

BATCH = 10_000


def _connect(job: dict):
    if job["backend"] == "postgresql":
        import psycopg

        conn = psycopg.connect(job["dsn"])
        # One snapshot for every part this process walks.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        return conn
    import sqlite3

    return sqlite3.connect(f"file:{job['dsn']}?mode=ro", uri=True)


def main() -> None:
    job = json.loads(sys.stdin.readline())
    conn = _connect(job)
    for line in sys.stdin:
        lo, hi, start, wanted = json.loads(line)
        sql = job["sql"].replace("{lo}", str(int(lo))).replace("{hi}", str(int(hi)))
        cursor = (conn.cursor(name="armslength_chain_part") if job["backend"] == "postgresql"
                  else conn.cursor())
        try:
            cursor.execute(sql)
            result = walk_rows(iter(lambda c=cursor: c.fetchmany(BATCH), []), start, wanted)
        except NeedsTypes:
            result = {"start": start, "needs_types": True}
        finally:
            cursor.close()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    conn.close()


if __name__ == "__main__":
    main()
