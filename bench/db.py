"""Benchmark databases: create, bulk-load, clone and describe them (SQLite files, PostgreSQL
databases on the server named by --pg-url)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import JSON, create_engine, text, update
from sqlalchemy.engine import make_url

import models
from app import create_app
from app.db.locking import ensure_lock_row
from app.ledger.audit import Actor, verify_chain
from app.ledger.row_verify import verify_rows
from bench.generate import TABLES, Generator, LedgerSpec, json_text

#: Bump when the generator changes, so cached ledgers are rebuilt.
GENERATOR_VERSION = 14  # 14: donor.possibly_covered set after loading
ACTOR = Actor("bench", role="admin")
STAFF_EMAIL = "bench-admin@example.org"
STAFF_PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway local database


@dataclass
class Target:
    backend: str  # "sqlite" | "postgresql"
    url: str
    name: str

    @property
    def label(self) -> str:
        return "SQLite" if self.backend == "sqlite" else "PostgreSQL"


class Databases:
    def __init__(self, data_dir: Path, pg_url: str | None):
        self.data_dir = data_dir
        self.pg_url = pg_url
        data_dir.mkdir(parents=True, exist_ok=True)

    # -- naming -------------------------------------------------------------------------------

    def target(self, backend: str, name: str) -> Target:
        if backend == "sqlite":
            return Target("sqlite", f"sqlite:///{self.data_dir / (name + '.sqlite3')}", name)
        if not self.pg_url:
            raise RuntimeError("no PostgreSQL URL")
        # BENCH_DB_PREFIX: several checkouts benching on one server keep apart.
        db = f"{os.environ.get('BENCH_DB_PREFIX', 'armslength_bench')}_{name}"
        return Target("postgresql", make_url(self.pg_url).set(database=db)
                      .render_as_string(hide_password=False), name)

    def _meta_path(self, target: Target) -> Path:
        return self.data_dir / f"{target.backend}-{target.name}.json"

    def meta(self, target: Target) -> dict | None:
        path = self._meta_path(target)
        return json.loads(path.read_text()) if path.exists() else None

    # -- lifecycle ----------------------------------------------------------------------------

    def _admin(self, *statements: str) -> None:
        engine = create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def drop(self, target: Target) -> None:
        if target.backend == "sqlite":
            path = Path(make_url(target.url).database)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        else:
            db = make_url(target.url).database
            self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._meta_path(target).unlink(missing_ok=True)

    def create_schema(self, target: Target) -> None:
        self.drop(target)
        if target.backend == "postgresql":
            self._admin(f'CREATE DATABASE "{make_url(target.url).database}"')
        engine = create_engine(target.url)
        models.metadata.create_all(engine)
        engine.dispose()

    def clone(self, source: Target, name: str) -> Target:
        """A copy of a loaded ledger, for measurements that write to it."""
        copy = self.target(source.backend, name)
        self.drop(copy)
        if source.backend == "sqlite":
            engine = create_engine(source.url)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            shutil.copyfile(make_url(source.url).database, make_url(copy.url).database)
        else:
            self._admin(f'CREATE DATABASE "{make_url(copy.url).database}" '
                        f'TEMPLATE "{make_url(source.url).database}"')
        meta = self.meta(source)
        if meta is not None:
            self._meta_path(copy).write_text(json.dumps(meta))
        return copy

    # -- the ledger ---------------------------------------------------------------------------

    def ensure_ledger(self, target: Target, spec: LedgerSpec, policy, log, *,
                      verify: bool = True) -> dict:
        """Reuse a cached ledger built from the same spec, or build it. verify=False skips
        the checks after loading (minutes at 1M; the generator is the same one the verified
        ledgers come from): the meta then says the ledger was not verified."""
        wanted = {"version": GENERATOR_VERSION, "gifts": spec.gifts, "end": spec.end.isoformat(),
                  "years": spec.years, "seed": spec.seed}
        if spec.people_count:
            wanted["people"] = spec.people_count
        meta = self.meta(target)
        if meta and meta.get("spec") == wanted and self._present(target):
            log(f"  reusing {target.label} ledger {target.name} ({spec.gifts:,} gifts)")
            return meta
        log(f"  generating {target.label} ledger {target.name} ({spec.gifts:,} gifts) ...")
        started = time.perf_counter()
        self.create_schema(target)
        generator = Generator(spec, policy)
        writer = _writer(target)
        try:
            for table, rows in generator.generate():
                writer.write(table, rows)
            writer.write("funding_day", generator.funding_days())
            writer.finish(generator.refunded)
        finally:
            writer.close()
        _fill_mix_days(target)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        if verify:
            log(f"    loaded in {loaded:.0f}s; verifying the audit chain and funding totals ...")
            checks = verify_ledger(target, generator.samples, policy.window_days)
        else:
            log(f"    loaded in {loaded:.0f}s; not verified (asked not to)")
            checks = {"verified": False}
        verified = time.perf_counter() - started
        token = _staff(target)
        meta = {"spec": wanted, "stats": asdict(generator.stats), "load_seconds": round(loaded, 1),
                "verify_seconds": round(verified, 1), "checks": checks, "token": token,
                "staff_email": STAFF_EMAIL}
        self._meta_path(target).write_text(json.dumps(meta, indent=1))
        log(f"    verified in {verified:.0f}s: {checks}")
        return meta

    def _present(self, target: Target) -> bool:
        try:
            engine = create_engine(target.url)
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM ledger_lock")).scalar_one()
            engine.dispose()
            return True
        except Exception:  # noqa: BLE001 - missing file or database: rebuild
            return False


class _SqliteWriter:
    def __init__(self, target: Target):
        self.engine = create_engine(target.url)
        self.conn = self.engine.connect()
        self.conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        self.conn.exec_driver_sql("PRAGMA synchronous=OFF")

    def write(self, table: str, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(models.metadata.tables[table].insert(), rows)
            self.conn.commit()

    def finish(self, refunded: list[dict]) -> None:
        gift = models.metadata.tables["gift"]
        if refunded:
            self.conn.execute(
                update(gift).where(gift.c.id == _bind("gift_id")).values(
                    refunded_minor=_bind("refunded_minor")), refunded)
        self.conn.execute(models.metadata.tables["ledger_lock"].insert(), [{"id": 1}])
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def _bind(name: str):
    from sqlalchemy import bindparam

    return bindparam(name)


class _PostgresWriter:
    """COPY ... FROM STDIN through psycopg, with explicit ids; sequences set at the end."""

    def __init__(self, target: Target):
        import psycopg

        url = make_url(target.url)
        self.conn = psycopg.connect(host=url.host, port=url.port, user=url.username,
                                    password=url.password, dbname=url.database)

    def write(self, table: str, rows: list[dict]) -> None:
        if not rows:
            return
        columns = models.metadata.tables[table].columns
        names = [c.name for c in columns]
        json_columns = {c.name for c in columns if isinstance(c.type, JSON)}
        # What an INSERT would fill in for a column the generator does not name (a flag
        # added to the model later, say): COPY takes no defaults, as insert() does.
        defaults = {c.name: c.default.arg for c in columns
                    if c.default is not None and c.default.is_scalar}
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([json_text(row[n]) if n in json_columns
                                    and row.get(n) is not None
                                    else row.get(n, defaults.get(n)) for n in names])
        self.conn.commit()

    def finish(self, refunded: list[dict]) -> None:
        with self.conn.cursor() as cur:
            if refunded:
                cur.executemany("UPDATE gift SET refunded_minor = %(refunded_minor)s "
                                "WHERE id = %(gift_id)s", refunded)
            cur.execute("INSERT INTO ledger_lock (id) VALUES (1)")
            for table in TABLES:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        self.conn.commit()
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")

    def close(self) -> None:
        self.conn.close()


def _writer(target: Target):
    return _SqliteWriter(target) if target.backend == "sqlite" else _PostgresWriter(target)


def app_for(target: Target, **config):
    return create_app({"DATABASE_URL": target.url, "SECRET_KEY": "bench-" + "x" * 40,
                       "ORG_TIMEZONE": "UTC", **config})


def _fill_mix_days(target: Target) -> None:
    """funding_mix_day from the loaded gifts, by the ledger's own recomputation (the one its
    tests hold the maintained table to): it depends only on the gifts, their attributions
    and the donors' categories, all generated."""
    from app.ledger.funding import add_mix_days, recomputed_mix_days
    from app.ledger.identity import refresh_possibly_covered

    app = app_for(target)
    st = app.extensions["armslength"]
    try:
        with st.sessions() as session:
            add_mix_days(session, recomputed_mix_days(session))
            # donor.possibly_covered from the loaded affiliations, as the app's writes keep it.
            refresh_possibly_covered(session, every=True)
            session.commit()
    finally:
        st.engine.dispose()


def verify_ledger(target: Target, samples: dict[str, tuple[int, int]], window_days: int) -> dict:
    """The generated ledger is one the door could have written: the audit chain verifies,
    funding_day equals a recomputation from the gift table, every gift has a decision, and
    the app's window sums agree with the windows the generator's decisions were made on."""
    from datetime import date

    from app.ledger.windows import window_totals

    app = app_for(target)
    st = app.extensions["armslength"]
    try:
        with st.sessions() as session:
            report = verify_chain(session)
            rows = verify_rows(session)
            mismatched = session.execute(text("""
                SELECT count(*) FROM (
                  SELECT received_on AS day, sum(reporting_amount_minor) AS total,
                         sum(lab_minor) AS lab, count(*) AS n
                  FROM gift WHERE status = 'accepted' AND kind = 'cash' GROUP BY received_on
                ) g FULL OUTER JOIN funding_day f ON f.day = g.day
                WHERE f.day IS NULL OR g.day IS NULL OR f.total_minor <> g.total
                   OR f.lab_minor <> g.lab OR f.gift_count <> g.n
            """)).scalar_one() if target.backend == "postgresql" else _sqlite_mismatch(session)
            mismatched += _refunded_mismatch(session)
            undecided = session.execute(text(
                "SELECT count(*) FROM gift WHERE NOT EXISTS "
                "(SELECT 1 FROM decision WHERE decision.gift_id = gift.id)")).scalar_one()
            ends = [date.fromisoformat(d) for d in sorted(samples)]
            windows = window_totals(session, ends, window_days)
            differ = [w.end.isoformat() for w in windows
                      if (w.total_minor, w.lab_minor) != tuple(samples[w.end.isoformat()])]
    finally:
        st.engine.dispose()
    return {"audit_chain_ok": report.ok, "audit_entries": report.entries,
            "rows_ok": rows.ok, "rows_checked": rows.rows, "row_problems": rows.counts,
            "funding_day_mismatches": mismatched, "gifts_without_decision": undecided,
            "windows_checked": len(ends), "window_mismatches": differ}


def _sqlite_mismatch(session) -> int:
    recomputed = {row[0]: tuple(row[1:]) for row in session.execute(text(
        "SELECT received_on, sum(reporting_amount_minor), sum(lab_minor), count(*) FROM gift "
        "WHERE status = 'accepted' AND kind = 'cash' GROUP BY received_on"))}
    stored = {row[0]: tuple(row[1:]) for row in session.execute(text(
        "SELECT day, total_minor, lab_minor, gift_count FROM funding_day"))}
    return len(set(recomputed.items()) ^ set(stored.items()))


def _refunded_mismatch(session) -> int:
    """Days whose refunded columns differ from a recomputation from the refunds."""
    from app.ledger.windows import refunded_lab

    expected: dict = {}
    for day, lab, total, refunded in session.execute(text(
            "SELECT g.received_on, g.lab_minor, g.reporting_amount_minor, r.refunded FROM gift g "
            "JOIN (SELECT gift_id, sum(reporting_amount_minor) AS refunded FROM refund "
            "GROUP BY gift_id) r ON r.gift_id = g.id "
            "WHERE g.status = 'accepted' AND g.kind = 'cash'")):
        day = day if not isinstance(day, str) else date.fromisoformat(day)
        t, lb = expected.get(day, (0, 0))
        expected[day] = (t + int(refunded), lb + refunded_lab(int(refunded), lab, total))
    stored = {(row[0] if not isinstance(row[0], str) else date.fromisoformat(row[0])): tuple(row[1:])
              for row in session.execute(text(
                  "SELECT day, refunded_minor, refunded_lab_minor FROM funding_day "
                  "WHERE refunded_minor <> 0 OR refunded_lab_minor <> 0"))}
    return len(set(expected.items()) ^ set(stored.items()))


def _staff(target: Target) -> str:
    """An admin with a password (for the staff pages) and an API token."""
    from app.auth.users import create_token, create_user
    from models.schemas import UserCreate

    app = app_for(target)
    st = app.extensions["armslength"]
    try:
        with st.sessions() as session:
            ensure_lock_row(session)
            create_user(session, UserCreate(email=STAFF_EMAIL, role="admin",
                                            password=STAFF_PASSWORD), ACTOR)
            return create_token(session, STAFF_EMAIL, ACTOR, name="bench")
    finally:
        st.engine.dispose()
