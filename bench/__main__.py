"""Arm's Length benchmarks, one command:

    .venv/bin/python -m bench            # quick: 10k and 100k gift ledgers (a few minutes)
    .venv/bin/python -m bench --full     # adds the 1,000,000-gift ledgers (much longer)

Ledgers are generated once (bench/generate.py) and cached in --data-dir (default
$TMPDIR/armslength-bench; PostgreSQL databases armslength_bench_* on --pg-url); later runs
reuse them. Measurements that write work on copies. The report (Markdown) goes to stdout
and to bench/results/<mode>.md. docs/performance.md explains the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import measure
from bench.db import Databases
from bench.generate import LedgerSpec
from policies import load_policy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _machine(pg_url: str | None) -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    pg = "not used"
    if pg_url:
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
    return [
        f"- date: {datetime.now().isoformat(timespec='seconds')}",
        f"- nproc: {os.cpu_count()}; CPU: {cpu}",
        f"- RAM: {mem_kb / 1024 / 1024:.1f} GiB",
        f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"PostgreSQL {pg}",
        f"- load average at start (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _size_name(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="add the 1,000,000-gift ledgers")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "armslength-bench")
    parser.add_argument("--only", default="intake,scaling,dashboard,csv,http,verify",
                        help="comma-separated sections to run")
    parser.add_argument("--intake-gifts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=None, help="scaling rounds")
    parser.add_argument("--import-rows", type=int, default=None,
                        help="gift rows in the CSV import (default 20,000; 100,000 with --full)")
    parser.add_argument("--http-seconds", type=int, default=20)
    parser.add_argument("--sizes", default=None,
                        help="comma-separated ledger sizes in gifts (default 10000,100000; "
                             "with --full also 1000000)")
    parser.add_argument("--verify-rounds", type=int, default=None,
                        help="verification runs per ledger (default 3; 1 at 1M gifts)")
    parser.add_argument("--verify-against", default=None, metavar="GIT_REF",
                        help="also time verify_audit of this revision (e.g. main), "
                             "alternating with this checkout's, on the same ledgers")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    backends = [b for b in args.backends.split(",") if b]
    pg_url = args.pg_url if "postgresql" in backends else None
    only = set(args.only.split(","))
    sizes = ([int(n) for n in args.sizes.split(",")] if args.sizes
             else [10_000, 100_000] + ([1_000_000] if args.full else []))
    rounds = args.rounds or (60 if args.full else 100)
    today = date.today()
    policy = load_policy()
    dbs = Databases(args.data_dir, pg_url)
    started = time.perf_counter()
    report = ["# Benchmark report", "",
              f"Command: `python -m bench {' '.join(argv if argv is not None else sys.argv[1:])}`",
              "", "## Machine", "", *_machine(pg_url), ""]

    log("ledgers:")
    ledgers: dict[tuple[str, int], tuple] = {}
    gen_rows = []
    for backend in backends:
        for n in sizes:
            target = dbs.target(backend, f"l{_size_name(n)}")
            meta = dbs.ensure_ledger(target, LedgerSpec(n, today), policy, log)
            ledgers[(backend, n)] = (target, meta, measure.cast_of(target, today))
            s = meta["stats"]
            gen_rows.append([target.label, f"{n:,}", f"{s['accepted']:,}/{s['held']:,}/"
                             f"{s['rejected']:,}", f"{s['refunds']:,}", f"{s['donors']:,}",
                             f"{s['lab_employees']:,}", f"{s['audit_entries']:,}",
                             f"{meta['load_seconds']:.0f} s",
                             _checked(meta["checks"])])
    report += ["## Ledgers (bulk-generated, see docs/performance.md)", "",
               *_table(["backend", "gifts", "accepted/held/rejected", "refunds", "donors",
                        "lab employees", "audit entries", "load time",
                        "chain + rows + funding_day + windows check"], gen_rows), ""]

    if "intake" in only:
        log("intake:")
        def intake_rows(measured) -> list[list[str]]:
            rows = []
            for backend in backends:
                target, _meta, cast = ledgers[(backend, 10_000)]
                r = measured(dbs, target, cast, args.intake_gifts, 10, log)
                rows.append([target.label, f"{r.gifts:,}", f"{r.door_rate:,.0f}/s",
                             f"{r.bare_rate:,.0f}/s", f"{r.ratio:.2f}x",
                             ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))])
            return rows

        rows = intake_rows(measure.intake)
        report += ["## (1) Gift intake: the one door vs a bare insert of the same rows", "",
                   "On a copy of the 10k ledger, gifts dated today; one transaction per gift "
                   "both ways, alternating in 10 rounds.", "",
                   *_table(["backend", "gifts", "door (record_gift)", "bare insert",
                            "door / bare time", "door outcomes"], rows), ""]
        rows = intake_rows(measure.batched_intake)
        report += ["### Batched: the door's GiftIntake vs a bare bulk insert", "",
                   f"The same kind of gifts, {-(-args.intake_gifts // 10)} per transaction "
                   "(10 rounds, alternating): GiftIntake inside ledger_batch (the checks and "
                   "the policy for each gift in turn, the lock, the audit chain; as the CSV "
                   "import records gifts) against the very rows it wrote inserted by the same "
                   "bulk write without screening, lock or reads.", "",
                   *_table(["backend", "gifts", "door (GiftIntake)", "bare bulk insert",
                            "door / bare time", "door outcomes"], rows), ""]

    if "scaling" in only:
        log("scaling:")
        report += ["## (2)/(3) One decision and the compliance summary, by ledger size", "",
                   f"Sizes alternate within each of {rounds} rounds. Median (p95).", ""]
        for backend in backends:
            targets = [(ledgers[(backend, n)][0], ledgers[(backend, n)][2]) for n in sizes]
            timings = measure.scaling(targets, rounds, log)
            rows = []
            small = f"{backend}:{targets[0][0].name}"
            large = f"{backend}:{targets[-1][0].name}"
            for op in measure.OPERATIONS:
                row = [op]
                for target, _ in targets:
                    key = f"{backend}:{target.name}:{op}"
                    row.append(f"{measure.ms(timings.median(key))} "
                               f"({measure.ms(timings.p95(key))})")
                row.append(f"{timings.median(f'{large}:{op}') / timings.median(f'{small}:{op}'):.2f}x")
                rows.append(row)
            report += [f"### {targets[0][0].label}", "",
                       *_table(["operation", *[f"{n:,} gifts" for n in sizes],
                                f"{_size_name(sizes[-1])} / 10k"], rows), ""]

    if "dashboard" in only:
        log("dashboard:")
        rows = []
        for backend in backends:
            targets = [ledgers[(backend, n)][0] for n in sizes]
            timings = measure.dashboard(targets, 30 if args.full else 40, log)
            if timings is None:
                report += ["## Dashboard", "", "/staff/compliance does not exist: skipped.", ""]
                break
            for target in targets:
                budget = timings.p95(f"{backend}:{target.name}:dashboard")
                for key, path in measure.STAFF_PAGES:
                    name = f"{backend}:{target.name}:{key}"
                    rows.append([target.label, target.name, path, measure.ms(timings.median(name)),
                                 measure.ms(timings.p95(name)),
                                 f"{timings.p95(name) / budget:.2f}x"])
        if rows:
            report += ["## (3) Staff pages: the dashboard GET /staff/compliance and the list "
                       "and report pages beside it (Flask test client, signed in; the pages "
                       "alternate within each round)", "",
                       *_table(["backend", "ledger", "page", "median", "p95",
                                "p95 / dashboard p95"], rows), ""]

    if "csv" in only:
        log("csv:")
        rows = []
        with tempfile.TemporaryDirectory(prefix="armslength-bench-csv-") as tmp:
            import_rows = args.import_rows or (100_000 if args.full else 20_000)
            files = _csv_files(Path(tmp), import_rows, today)
            for backend in backends:
                fresh = dbs.target(backend, "import")
                dbs.ensure_ledger(fresh, LedgerSpec(0, today), policy, log)
                copy = dbs.clone(fresh, "import_run")
                try:
                    out = _child(["import", copy.url, tmp, today.isoformat()])
                finally:
                    dbs.drop(copy)
                rate = out["rows"] / out["seconds"]
                rows.append([copy.label, f"import {files['gifts']:,} gifts + "
                             f"{files['donors']:,} donors + {files['affiliations']:,} "
                             "affiliations", f"{out['seconds']:.1f} s "
                             f"(check {out['check_seconds']:.1f} s)", f"{rate:,.0f} rows/s",
                             _memory(out)])
                log(f"    import {copy.label}: {rate:,.0f} rows/s, peak {out['peak_mb']:.0f} MB")
                target = ledgers[(backend, sizes[-1])][0]
                out = _child(["export", target.url])
                rows.append([target.label, f"export {out['rows']:,} gifts "
                             f"({out['bytes'] / 1e6:.0f} MB CSV)", f"{out['seconds']:.1f} s",
                             f"{out['rows'] / out['seconds']:,.0f} rows/s",
                             _memory(out)])
                log(f"    export {target.label}: {out['rows']:,} rows, peak {out['peak_mb']:.0f} MB")
        report += ["## (4) CSV import and streamed export (each in a child process; peak = "
                   "its ru_maxrss)", "", *_table(["backend", "job", "time", "rate", "peak memory"],
                                             rows), ""]

    if "http" in only and "postgresql" in backends:
        from bench import http

        log("http:")
        if not http.wrk_available():
            report += ["## (5) HTTP", "", "wrk is not installed (apt-get install -y wrk): skipped.",
                       ""]
        else:
            target, meta, cast = ledgers[("postgresql", sizes[-1])]
            copy = dbs.clone(target, "http")
            workers = 2 * (os.cpu_count() or 1)
            try:
                results = http.run(copy.url, meta["token"], cast.people[:200], today.isoformat(),
                                   seconds=args.http_seconds, workers=workers, connections=8,
                                   threads=2)
            finally:
                dbs.drop(copy)
            rows = [[r.name, f"{r.requests:,}", f"{r.rate:,.0f}/s", f"{r.p50_ms:.1f}",
                     f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.max_ms:.0f}",
                     f"{r.non_2xx}/{r.socket_errors}"] for r in results]
            report += [f"## (5) JSON API under gunicorn on PostgreSQL ({_size_name(sizes[-1])} "
                       "ledger copy)", "",
                       f"gunicorn {workers} sync workers; wrk 2 threads, 8 connections, "
                       f"{args.http_seconds} s per endpoint, loopback; the same machine runs "
                       "gunicorn, PostgreSQL and wrk.", "",
                       *_table(["endpoint", "requests", "throughput", "p50 ms", "p95 ms",
                                "p99 ms", "max ms", "non-2xx/socket errors"], rows), ""]

    if "verify" in only:
        from bench.verify import verify_timings

        log("verify:")
        rows = []
        against = args.verify_against
        for backend in backends:
            for n in sizes:
                target = ledgers[(backend, n)][0]
                r = verify_timings(target, args.verify_rounds or (1 if n >= 1_000_000 else 3),
                                   log, against)
                rows.append([target.label, f"{n:,}", f"{r.entries:,}", f"{r.rows:,}",
                             f"{r.total_s:.1f} s", f"{r.chain_s:.1f} s", f"{r.rows_s:.1f} s",
                             *([f"{r.reference_s:.1f} s", f"{r.reference_s / r.total_s:.1f}x"]
                               if against else []),
                             "ok" if r.ok else "FAILED"])
        report += ["## (6) Ledger verification (`armslength verify-audit`, "
                   "`GET /api/v1/audit/verify`)", "",
                   "verify_audit (chain, checkpoints, disclosures, rows) timed in a fresh "
                   "process; then its chain walk (verify_chain) and row check (verify_rows) "
                   "on their own. Median of "
                   f"{args.verify_rounds or '3 runs (1 at 1M)'}"
                   + (f"; `{against}`'s verify_audit alternating with this checkout's on "
                      "the same ledger." if against else "."), "",
                   *_table(["backend", "gifts", "audit entries", "rows hashed", "verify_audit",
                            "chain", "rows",
                            *([f"verify_audit at {against}", f"{against} / this"]
                              if against else []), "result"], rows), ""]

    report += [f"Finished in {time.perf_counter() - started:.0f} s; load average at end: "
               f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.", ""]
    text_out = "\n".join(report)
    print(text_out)
    output = args.output or ROOT / "bench" / "results" / ("full.md" if args.full else "quick.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text_out)
    log(f"report written to {output}")
    return 0


def _checked(checks: dict) -> str:
    if checks.get("verified") is False:  # generated with verify=False (bench.db.ensure_ledger)
        return "not checked when generated"
    return ("ok" if checks["audit_chain_ok"] and checks.get("rows_ok")
            and not checks["funding_day_mismatches"] and not checks["window_mismatches"]
            else "FAILED")


def _csv_files(directory: Path, gifts: int, today: date) -> dict:
    from bench.csvjob import write_files

    return write_files(directory, gifts, max(1000, gifts // 20), today)


def _memory(out: dict) -> str:
    return (f"{out['peak_mb']:.0f} MB (VmHWM {out['hwm_mb']:.0f} MB; "
            f"{out['peak_mb_before']:.0f} MB before the job)")


def _child(args: list[str]) -> dict:
    # Through a shell that forks the job (the command is not its last), so the job's
    # ru_maxrss starts from the shell's small address space, not this process's.
    command = [sys.executable, "-m", "bench.csvjob", *args]
    out = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *command], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench.csvjob {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
