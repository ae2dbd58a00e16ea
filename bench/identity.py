"""Identity matching at scale: one decision before and after a ledger gains many donors.

    python -m bench.identity --donors 200000 [--backends sqlite,postgresql] [--gifts 10000]
    python -m bench.identity --large-gifts 1000000 [--backends ...]   # issue 11's target

Takes the generated ledger of --gifts gifts (made as `python -m bench` makes it), clones it,
and times one decision (record_gift with dry_run: every read, the matching and the policy,
no write) for three donors: a lab employee (today), the ordinary donor with the ledger's
most common name (the most candidates the blocking keys return), and a lab employee's
namesake on another record (a possible match, held). Then it adds --donors people with
realistic names (bench/names.py; about 7% with a covered-lab affiliation, as the generator
makes them) to the clone by bulk insert, with their blocking keys, and times the same
decisions again, alternating the two ledgers each round. The ratio large / small is the
figure issue 11 asks for (within 1.5x).

With --large-gifts N it compares the --gifts ledger with an N-gift ledger of N // 5 people
(200,000 at 1,000,000 gifts), as issue 11 states the target: a decision at the 1M-gift
ledger with 200,000 donors against the 10k one. Generating 1,000,000 gifts one by one (the
policy deciding each) took over 1.5 hours per backend on the shared machine, so the large
ledger is generated with all its people and N // --repeat gifts (verified as every
generated ledger is), then each gift is repeated --repeat times by INSERT ... SELECT with
its attributions, decisions and refunds, and the daily sums scaled (repeat_gifts; the audit
chain is not extended). The two ledgers hold different people, so each side's donors are
chosen by the same rules in that ledger (its own most common name: a worse case in the
larger one).

SQLite ledgers are ANALYZEd before timing, both sides alike (the bulk load leaves no
statistics; PostgreSQL's loader runs VACUUM ANALYZE).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

import models
from app.ledger.gifts import record_gift
from app.ledger.identity import donor_keys
from bench.db import ACTOR, Databases, app_for
from bench.generate import LedgerSpec
from bench.names import names
from models import Affiliation, Donor, Organization, utcnow
from models.schemas import GiftCreate
from policies import load_policy

BATCH = 5000
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _log(message: str) -> None:
    print(message, flush=True)


def add_people(target, count: int, seed: int = 99) -> int:
    """`count` person donors with realistic names, 7% employed at a covered lab."""
    app = app_for(target)
    st = app.extensions["armslength"]
    rng = random.Random(seed)
    stream = names(rng)
    try:
        with st.sessions() as session:
            labs = list(session.execute(select(Organization.id).where(
                Organization.covered_lab.is_(True))).scalars())
            first = (session.execute(select(func.max(Donor.id))).scalar_one() or 0) + 1
            next_aff = (session.execute(select(func.max(Affiliation.id))).scalar_one() or 0) + 1
            now = utcnow()
            for start in range(0, count, BATCH):
                donors, affiliations = [], []
                for donor_id in range(first + start, first + min(count, start + BATCH)):
                    name = next(stream)
                    email = f"extra{donor_id}@example.net"
                    donors.append({"id": donor_id, "type": "person", "name": name,
                                   "email": email, "category": "individual",
                                   "anonymous": False, "created_at": now,
                                   "possibly_covered": False,
                                   **donor_keys(name, email, None)})
                    if rng.random() < 0.07:
                        donors[-1]["possibly_covered"] = True  # kept as the app keeps it
                        affiliations.append({
                            "id": next_aff, "donor_id": donor_id, "organization_id": rng.choice(labs),
                            "kind": "employee", "title": "Engineer",
                            "senior_decision_maker": False, "created_at": now,
                            "start_date": date(2018, 1, 1) + timedelta(days=rng.randrange(2000))})
                        next_aff += 1
                session.execute(insert(Donor), donors)
                if affiliations:
                    session.execute(insert(Affiliation), affiliations)
            session.commit()
            if target.backend == "postgresql":
                session.connection().exec_driver_sql("ANALYZE donor")
                session.connection().exec_driver_sql("ANALYZE affiliation")
                session.commit()
            else:
                session.connection().exec_driver_sql("ANALYZE")
                session.commit()
    finally:
        st.engine.dispose()
    return count


#: What each repeated copy of a gift's rows shifts: ids and the references to gifts and refunds.
_REPEATED = {
    "gift": {"id": "gift", "matching_gift_for_id": "gift"},
    "attribution": {"id": "attribution", "gift_id": "gift"},
    "decision": {"id": "decision", "gift_id": "gift"},
    "refund": {"id": "refund", "gift_id": "gift", "reverses_refund_id": "refund"},
}
#: Daily sums that grow with the gifts (funding.py keeps them additively).
_SCALED = {
    "funding_day": ("total_minor", "lab_minor", "gift_count", "refunded_minor",
                    "refunded_lab_minor"),
    "funding_mix_day": ("credited_ppm",),
}


def repeat_gifts(target, times: int) -> int:
    """Every gift, with its attributions, decisions and refunds, repeated `times` times in
    all (new ids, the same donors and dates; external_ref gets a suffix), and the daily sums
    scaled to match: a ledger of `times` as many gifts in seconds, where generating them one
    by one (bench.generate: the policy decides each) took hours on the shared machine. The
    audit chain is not extended (a decision reads only its head), so the copy is for timing
    reads, not for verifying. Returns the number of gifts."""
    app = app_for(target)
    engine = app.extensions["armslength"].engine
    tables = models.metadata.tables
    try:
        with engine.begin() as conn:
            top = {t: conn.execute(select(func.max(tables[t].c.id))).scalar_one() or 0
                   for t in _REPEATED}
            for table, shifted in _REPEATED.items():
                columns = [c.name for c in tables[table].columns]
                for k in range(1, times):
                    values = [f"{c} + {k * top[shifted[c]]}" if c in shifted
                              else f"{c} || '-{k}'" if c == "external_ref" else c
                              for c in columns]
                    conn.exec_driver_sql(
                        f"INSERT INTO {table} ({', '.join(columns)}) SELECT "
                        f"{', '.join(values)} FROM {table} WHERE id <= {top[table]}")
            for table, columns in _SCALED.items():
                conn.exec_driver_sql(f"UPDATE {table} SET " + ", ".join(
                    f"{c} = {c} * {times}" for c in columns))
            if target.backend == "postgresql":
                for table in _REPEATED:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}) + 1, false)")
            gifts = conn.execute(select(func.count()).select_from(tables["gift"])).scalar_one()
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE" if target.backend == "postgresql"
                                 else "ANALYZE")
    finally:
        engine.dispose()
    return gifts


def _subjects(session, end: date) -> dict[str, int]:
    """The donors whose decisions are timed (the same ids exist in both ledgers)."""
    covered = select(Organization.id).where(Organization.covered_lab.is_(True))
    lab = session.execute(select(Affiliation.donor_id).where(
        Affiliation.organization_id.in_(covered), Affiliation.end_date.is_(None),
        Affiliation.senior_decision_maker.is_(False)).order_by(Affiliation.donor_id)
        .limit(1)).scalar_one()
    affiliated = select(Affiliation.donor_id)
    common_key = session.execute(
        select(Donor.name_key_a).where(Donor.type == "person").group_by(Donor.name_key_a)
        .order_by(func.count().desc(), Donor.name_key_a).limit(1)).scalar_one()
    common = session.execute(select(Donor.id).where(
        Donor.name_key_a == common_key, Donor.id.not_in(affiliated)).order_by(Donor.id)
        .limit(1)).scalar_one()
    # An ordinary donor who shares a lab employee's name: a possible match.
    lab_names = select(Donor.name).where(Donor.id.in_(
        select(Affiliation.donor_id).where(Affiliation.organization_id.in_(covered))))
    namesake = session.execute(select(Donor.id).where(
        Donor.type == "person", Donor.name.in_(lab_names), Donor.id.not_in(affiliated))
        .order_by(Donor.id).limit(1)).scalar_one_or_none()
    subjects = {"lab employee": lab, "most common name": common}
    if namesake is not None:
        subjects["a lab employee's namesake"] = namesake
    return subjects


def measure(targets, end: date, rounds: int, *, same_people: bool = True) -> dict:
    """same_people: the ledgers share their donors' ids (a clone and its original), so the
    same donors are timed in both; else each ledger's own are chosen by the same rules."""
    policy = load_policy()
    apps = [(t, app_for(t)) for t in targets]
    sessions = [app.extensions["armslength"].sessions() for _, app in apps]
    try:
        chosen = {}
        for (target, _), session in zip(apps, sessions, strict=True):
            chosen[target.name] = _subjects(sessions[0] if same_people else session, end)
            session.rollback()
        subjects = chosen[targets[0].name]
        samples: dict[tuple[str, str], list[float]] = {}
        #: This process's CPU time (time.process_time): what other work on the machine
        #: disturbs less than wall-clock time (the database server's own time is not in it).
        cpu: dict[tuple[str, str], list[float]] = {}
        outcomes: dict[tuple[str, str], str] = {}
        for _ in range(rounds):
            for (target, app), session in zip(apps, sessions, strict=True):
                st = app.extensions["armslength"]
                for label, donor_id in chosen[target.name].items():
                    if label not in subjects:
                        continue
                    body = GiftCreate.model_validate({"donor_id": donor_id, "amount": "100.00",
                                                      "currency": "USD",
                                                      "received_on": end.isoformat()})
                    began, began_cpu = time.perf_counter(), time.process_time()
                    made = record_gift(session, body, ACTOR, policy, st.reporting_currency,
                                       dry_run=True)
                    samples.setdefault((target.name, label), []).append(
                        time.perf_counter() - began)
                    cpu.setdefault((target.name, label), []).append(
                        time.process_time() - began_cpu)
                    outcomes[(target.name, label)] = made.evaluation.outcome
                    session.rollback()
        donors = {t.name: s.execute(select(func.count()).select_from(Donor)).scalar_one()
                  for (t, _), s in zip(apps, sessions, strict=True)}
    finally:
        for session in sessions:
            session.close()
        for _, app in apps:
            app.extensions["armslength"].engine.dispose()
    return {"subjects": subjects, "samples": samples, "outcomes": outcomes, "donors": donors,
            "chosen": chosen, "cpu": cpu}


def analyze(target) -> None:
    """SQLite keeps no statistics until ANALYZE: run it so both ledgers are planned alike."""
    if target.backend == "sqlite":
        app = app_for(target)
        engine = app.extensions["armslength"].engine
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        finally:
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "armslength-bench")
    parser.add_argument("--gifts", type=int, default=10_000)
    parser.add_argument("--donors", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--large-gifts", type=int, default=0,
                        help="compare with the generated ledger of this many gifts (and its "
                             "gifts // 5 people) instead of adding --donors to a clone")
    parser.add_argument("--end", type=date.fromisoformat, default=date.today(),
                        help="the ledgers' last day, and the decisions' date (default today): "
                             "pin it to reuse ledgers generated on an earlier day")
    parser.add_argument("--repeat", type=int, default=10,
                        help="with --large-gifts: generate that many gifts / REPEAT (with all "
                             "the people), then repeat each gift REPEAT times")
    parser.add_argument("--no-verify-large", action="store_true",
                        help="skip the checks after generating the --large-gifts ledger's seed")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    dbs = Databases(args.data_dir, args.pg_url if "postgresql" in backends else None)
    today = args.end
    lines = ["| backend | donor | decision, ledger as generated | decision, with "
             f"{args.donors:,} more donors | ratio | CPU ratio | outcome |",
             "|---|---|---|---|---|---|---|"]
    if args.large_gifts:
        lines[0] = (f"| backend | donor | decision, {args.gifts:,}-gift ledger | decision, "
                    f"{args.large_gifts:,}-gift ledger | ratio | CPU ratio | outcome |")
    for backend in backends:
        base = dbs.target(backend, f"l{args.gifts // 1000}k")
        dbs.ensure_ledger(base, LedgerSpec(args.gifts, today), load_policy(), _log)
        if args.large_gifts:
            # Generated with all its people and a tenth (1/--repeat) of its gifts, which are
            # then repeated: see repeat_gifts.
            spec = LedgerSpec(args.large_gifts // args.repeat, today,
                              people_count=args.large_gifts // 5)
            seed = dbs.target(backend, f"l{spec.gifts // 1000}k_p{spec.people // 1000}k")
            dbs.ensure_ledger(seed, spec, load_policy(), _log, verify=not args.no_verify_large)
            big = dbs.target(backend, f"l{args.large_gifts // 1000}k_p{spec.people // 1000}k")
            made = dbs.meta(big) or {}
            if (made.get("repeated") == args.repeat and made.get("spec") == dbs.meta(seed)["spec"]
                    and dbs._present(big)):
                _log(f"  reusing {big.label} ledger {big.name} (the seed repeated "
                     f"{args.repeat} times)")
            else:
                big = dbs.clone(seed, big.name)
                began = time.perf_counter()
                gifts = repeat_gifts(big, args.repeat)
                meta = dbs.meta(big)
                dbs._meta_path(big).write_text(json.dumps({**meta, "repeated": args.repeat}))
                _log(f"{backend}: {big.name}: {spec.gifts:,} gifts repeated {args.repeat} "
                     f"times: {gifts:,} gifts, in {time.perf_counter() - began:.0f} s")
        else:
            big = dbs.clone(base, f"l{args.gifts // 1000}k_plus_people")
            began = time.perf_counter()
            add_people(big, args.donors)
            _log(f"{backend}: added {args.donors:,} donors in {time.perf_counter() - began:.0f} s")
        for target in (base, big):
            analyze(target)
        result = measure([base, big], today, args.rounds, same_people=not args.large_gifts)
        _log(f"{backend}: donors {result['donors']}; timed {result['chosen']}")
        for label in result["subjects"]:
            if (big.name, label) not in result["samples"]:
                continue
            small = statistics.median(result["samples"][(base.name, label)])
            large = statistics.median(result["samples"][(big.name, label)])
            cpu_ratio = (statistics.median(result["cpu"][(big.name, label)])
                         / statistics.median(result["cpu"][(base.name, label)]))
            lines.append(
                f"| {base.label} | {label} | {small * 1000:.2f} ms "
                f"({result['donors'][base.name]:,} donors) | {large * 1000:.2f} ms "
                f"({result['donors'][big.name]:,} donors) | {large / small:.2f}x | "
                f"{cpu_ratio:.2f}x | "
                f"{result['outcomes'][(big.name, label)]} |")
        if not args.large_gifts:  # the repeated ledger is kept for the next run
            dbs.drop(big)
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
