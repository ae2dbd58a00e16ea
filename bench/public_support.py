"""Bench: the public-support test (and Schedule B) on large ledgers.

    .venv/bin/python -m bench.public_support                 # 10k and 100k gifts, SQLite
    .venv/bin/python -m bench.public_support --sizes 1000000 --backends sqlite,postgresql

The computation reads only gifts, refunds, attributions, organisations and donors, so this
section writes its own ledgers of exactly those rows (bulk INSERTs, seconds per million),
not the full ledgers of bench/generate.py (decisions, audit chain, funding days: about an
hour per backend at 1M on the shared machine). Five years of gifts (2021-2025), 200 donors
per 1,000 gifts, 2% refunded in part, 1% split between two donors, organisation donors
under parents, spouse links, governmental donors and unusual grants.

Each round measures, one after the other on the same ledger: the bare floor (one
`SELECT sum(reporting_amount_minor)` over the same gifts, what any computation must at least
read), the computation before issue 16's change (the per-gift reader, kept in
bench/legacy_public_support.py, with the same pure computation), after it (the app's reader,
app.ledger.public_support with gift_ids=False: line 1 per year in SQL, then only the donors
over the 2% limit or treated apart summed per donor), after it with every gift id
read too (what GET /api/v1/public-support answers), and Schedule B before (every gift of the
year, bench/legacy_schedule_b.py) and after (the year and each donor summed in SQL, only the
listed contributors' gifts read). Medians of --rounds. "same figures": the public-support
figures and the whole Schedule B equal before and after.
Generate once and measure later: --generate-only, then --reuse.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

import models
from app.ledger.public_support import contributions, public_support
from app.ledger.schedule_b import schedule_b_of
from bench.legacy_public_support import contributions as legacy_contributions
from bench.legacy_schedule_b import year_gifts as legacy_year_gifts
from models import Attribution, Donor, Gift, Organization, Refund
from models.public_support import SupportClass, SupportLink, UnusualGrant
from policies.public_support import compute, load_rules
from policies.schedule_b import schedule_b

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHUNK = 20_000
YEARS = (2021, 2025)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _database(backend: str, gifts: int, data_dir: Path, pg_url: str,
              reuse: bool = False) -> str:
    if backend == "sqlite":
        path = data_dir / f"public_support_{gifts}.sqlite3"
        if not reuse:
            path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    # BENCH_DB_PREFIX: several checkouts benching on one server keep apart.
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'armslength_bench')}_public_support_{gifts}"
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    if reuse:
        return url
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


def generate(url: str, gifts: int, seed: int = 16) -> dict:
    """The ledger rows the computation reads, written with bulk INSERTs."""
    rng = random.Random(seed)
    engine = create_engine(url)
    models.metadata.create_all(engine)
    now = datetime.now(UTC)
    people = max(100, gifts // 5)
    orgs = max(10, gifts // 2000)
    first, days = date(YEARS[0], 1, 1), (date(YEARS[1], 12, 31) - date(YEARS[0], 1, 1)).days + 1
    with engine.begin() as conn:
        conn.execute(insert(Organization), [
            {"id": i, "name": f"Company {i}", "covered_lab": False, "aliases": [],
             # every fourth company is a subsidiary of the one before it
             "parent_id": i - 1 if i % 4 == 0 else None, "created_at": now}
            for i in range(1, orgs + 1)])
        donors = [{"id": i, "type": "person", "name": f"Person {i}", "category": "individual",
                   "anonymous": False, "created_at": now} for i in range(1, people + 1)]
        donors += [{"id": people + i, "type": "organization", "name": f"Company {i}",
                    "organization_id": i, "category": "company", "anonymous": False,
                    "created_at": now} for i in range(1, orgs + 1)]
        for start in range(0, len(donors), CHUNK):
            conn.execute(insert(Donor), donors[start:start + CHUNK])
        conn.execute(insert(SupportLink), [
            {"donor_id": 2 * i - 1, "other_donor_id": 2 * i, "relation": "spouse",
             "reason": "bench", "created_at": now} for i in range(1, people // 100 + 1)])
        conn.execute(insert(SupportClass), [
            {"donor_id": people + i, "support_class": "governmental_unit", "reason": "bench",
             "set_at": now} for i in range(1, orgs + 1, 10)])
    gift_id = refund_id = attribution_id = 0
    unusual = []
    with engine.begin() as conn:
        while gift_id < gifts:
            rows, attributions, refunds = [], [], []
            for _ in range(min(CHUNK, gifts - gift_id)):
                gift_id += 1
                company = rng.random() < 0.05
                donor = people + rng.randint(1, orgs) if company else rng.randint(1, people)
                amount = rng.choice((2_500, 5_000, 10_000, 25_000, 100_000, 500_000))
                if company:
                    amount *= 20
                day = first + timedelta(days=rng.randrange(days))
                rows.append({"id": gift_id, "donor_id": donor, "amount_minor": amount,
                             "currency": "USD", "reporting_amount_minor": amount,
                             "reporting_currency": "USD", "fx_rate": "1", "fx_source": "identity",
                             "received_on": day, "method": "card", "kind": "cash",
                             "purpose": "general", "status": "accepted", "refunded_minor": 0,
                             "lab_minor": 0, "disclose": False, "created_at": now})
                if rng.random() < 0.01 and donor < people:  # a joint gift, half each
                    attributions += [
                        {"id": attribution_id + 1, "gift_id": gift_id, "donor_id": donor,
                         "fraction_ppm": 500_000, "basis": "explicit"},
                        {"id": attribution_id + 2, "gift_id": gift_id, "donor_id": donor + 1,
                         "fraction_ppm": 500_000, "basis": "explicit"}]
                    attribution_id += 2
                else:
                    attribution_id += 1
                    attributions.append({"id": attribution_id, "gift_id": gift_id,
                                         "donor_id": donor, "fraction_ppm": 1_000_000,
                                         "basis": "donor"})
                if rng.random() < 0.02:
                    refund_id += 1
                    part = amount // 2
                    rows[-1]["refunded_minor"] = part
                    refunds.append({"id": refund_id, "gift_id": gift_id, "amount_minor": part,
                                    "reporting_amount_minor": part,
                                    "refunded_on": min(day + timedelta(days=30),
                                                       date(YEARS[1], 12, 31)),
                                    "gift_received_on": day, "created_at": now})
                if company and rng.random() < 0.001:
                    unusual.append({"gift_id": gift_id, "reason": "bench", "marked_at": now})
            conn.execute(insert(Gift), rows)
            conn.execute(insert(Attribution), attributions)
            if refunds:
                conn.execute(insert(Refund), refunds)
        if unusual:
            conn.execute(insert(UnusualGrant), unusual)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        for table in ("organization", "donor", "gift", "attribution", "refund"):
            with engine.begin() as conn:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    engine.dispose()
    return {"gifts": gifts, "donors": len(donors), "refunds": refund_id,
            "unusual": len(unusual)}


def _median(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(url: str, rounds: int) -> dict:
    """Before (the per-gift reader, bench/legacy_public_support.py) and after (sums in the
    database, app.ledger.public_support), alternating in each round, so both meet the same
    load; both must give the same figures."""
    rules = load_rules()
    engine = create_engine(url)
    floor_sql = text("SELECT sum(reporting_amount_minor) FROM gift WHERE status = 'accepted' "
                     "AND kind = 'cash' AND received_on BETWEEN :a AND :b")

    def floor():
        with engine.connect() as conn:
            conn.execute(floor_sql, {"a": date(YEARS[0], 1, 1), "b": date(YEARS[1], 12, 31)})

    found = {}

    def before():
        with Session(engine) as session:
            facts = legacy_contributions(session, YEARS[1], rules)
            found["before"] = compute(YEARS[1], facts[0], facts[1], rules)
            found["before_read"] = len(facts[0])

    def after():
        with Session(engine) as session:
            found["after"] = public_support(session, YEARS[1], rules, "USD",
                                            gift_ids=False).result

    def with_ids():
        with Session(engine) as session:
            public_support(session, YEARS[1], rules, "USD")

    def schedule_before():
        # schedule_b_of as it was: the public-support test, then every gift of the year.
        with Session(engine) as session:
            special = public_support(session, YEARS[1], rules, "USD",
                                     gift_ids=False).result.meets_support_test
            found["schedule_before"] = schedule_b(
                YEARS[1], legacy_year_gifts(session, YEARS[1]), rules, special_rule=special)

    def schedule():
        with Session(engine) as session:
            found["schedule_after"] = schedule_b_of(session, YEARS[1], rules, "USD").schedule

    times = {"floor": [], "before": [], "after": [], "with_ids": [], "schedule_before": [],
             "schedule_b": []}
    # This process's CPU time too: at a load of many times the cores, wall time is mostly
    # waiting for a core (SQLite's work is in this process; PostgreSQL's in the server).
    cpu: dict[str, list[float]] = {name: [] for name in times}
    for _ in range(rounds):
        for name, fn in (("floor", floor), ("before", before), ("after", after),
                         ("with_ids", with_ids), ("schedule_before", schedule_before),
                         ("schedule_b", schedule)):
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    b, a = found["before"], found["after"]
    same = (b.total_support_minor, b.excess_minor, b.percentage) == (
        a.total_support_minor, a.excess_minor, a.percentage)
    sb, sa = found["schedule_before"], found["schedule_after"]
    same = same and sb == sa
    with Session(engine) as session:
        facts = contributions(session, YEARS[1], rules)
        after_read = len(facts.contributions) + len(facts.donor_sums) + len(facts.year_sums)
    engine.dispose()
    return {**{name: statistics.median(t) for name, t in times.items()},
            **{f"{name}_cpu": statistics.median(t) for name, t in cpu.items()},
            "percentage": a.percentage_text, "same": same,
            "schedule_listed": len(sa.contributors),
            "before_read": found["before_read"], "after_read": after_read}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.public_support", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "armslength-bench")
    parser.add_argument("--reuse", action="store_true",
                        help="measure ledgers an earlier run generated (same sizes, data dir "
                             "and BENCH_DB_PREFIX) instead of writing them again")
    parser.add_argument("--generate-only", action="store_true",
                        help="write the ledgers and stop (measure them later with --reuse)")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    lines = ["| backend | gifts | floor: bare sum | before: per gift, wall and this process's CPU "
             "(objects) | after: sums in SQL (objects) | after / before (wall) | "
             "after, with every gift id | Schedule B before: every gift of the year | "
             "Schedule B after: sums in SQL (listed) | percentage | same figures |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            url = _database(backend, size, args.data_dir, args.pg_url, args.reuse)
            if not args.reuse:
                started = time.perf_counter()
                made = generate(url, size)
                log(f"{backend} {size:,}: generated in {time.perf_counter() - started:.0f} s "
                    f"{made}")
            if args.generate_only:
                continue
            m = measure(url, args.rounds)
            lines.append(f"| {backend} | {size:,} | {m['floor']:.3f} s | "
                         f"{m['before']:.2f} s, CPU {m['before_cpu']:.2f} s "
                         f"({m['before_read']:,}) | "
                         f"{m['after']:.2f} s, CPU {m['after_cpu']:.2f} s "
                         f"({m['after_read']:,}) | "
                         f"{m['after'] / m['before']:.3f} | {m['with_ids']:.2f} s | "
                         f"{m['schedule_before']:.2f} s, CPU {m['schedule_before_cpu']:.2f} s | "
                         f"{m['schedule_b']:.2f} s, CPU {m['schedule_b_cpu']:.2f} s "
                         f"({m['schedule_listed']:,}) | "
                         f"{m['percentage']} | "
                         f"{'yes' if m['same'] else 'NO'} |")
            log(lines[-1])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
