"""CSV import and export, each run alone in a child process so its peak memory
(resource.getrusage ru_maxrss) is its own:

    python -m bench.csvjob import DATABASE_URL DIRECTORY TODAY
    python -m bench.csvjob export DATABASE_URL

Prints one JSON line: rows, seconds, peak resident memory in MB.
"""

from __future__ import annotations

import csv
import json
import random
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

LAB = "Frontier Lab 1"


def write_files(directory: Path, gifts: int, donors: int, end: date, seed: int = 11) -> dict:
    """donors.csv, affiliations.csv (2% lab employees) and gifts.csv over the last 3 years."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "donors.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "type", "name", "email", "category"])
        for i in range(1, donors + 1):
            w.writerow([f"imp-d{i}", "person", f"Imported Person {i}", f"imp{i}@example.org", ""])
    lab_people = list(range(1, donors + 1, 50))
    with (directory / "affiliations.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["donor_external_id", "organization", "senior_decision_maker", "start_date",
                    "title"])
        for i in lab_people:
            w.writerow([f"imp-d{i}", LAB, "false", "2018-01-01", "Engineer"])
    start = end - timedelta(days=3 * 365)
    with (directory / "gifts.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["external_ref", "donor_external_id", "amount", "currency", "received_on",
                    "method", "fx_rate", "description"])
        for i in range(1, gifts + 1):
            donor = rng.randrange(1, donors + 1)
            day = start + timedelta(days=rng.randrange(0, 3 * 365))
            currency, rate = ("EUR", "1.08") if rng.random() < 0.05 else ("USD", "")
            w.writerow([f"imp-g{i}", f"imp-d{donor}", rng.choice(("25", "50.00", "100", "250.00")),
                        currency, day.isoformat(), "check", rate,
                        "Imported from the old CRM" if i % 10 == 0 else ""])
    return {"donors": donors, "affiliations": len(lab_people), "gifts": gifts}


def _peak_mb() -> float:
    """Peak resident memory of this process (ru_maxrss, KiB on Linux).

    Linux carries ru_maxrss across exec from the address space the process was forked
    with, so bench/__main__.py starts this job from a small shell, not from itself: else the
    figure would be the benchmark runner's own peak. /proc/self/status VmHWM (this address
    space only) is reported alongside as a cross-check."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ledger(url: str):
    """The engine and session factory the app would use, without the web app around them
    (its import alone peaks at over 100 MB: fpdf2's fonts, argon2's dummy hash)."""
    from app.db import make_engine, session_factory
    from policies import load_policy

    engine = make_engine(url)
    return engine, session_factory(engine), load_policy()


def run_import(url: str, directory: Path, today: date) -> dict:
    from app.ledger.audit import Actor
    from app.ledger.csv_import import KINDS, CsvImport

    engine, sessions, policy = _ledger(url)
    before = _peak_mb()
    began = time.perf_counter()
    with sessions() as session:
        with CsvImport(session, today=today, reporting_currency="USD") as job:
            for kind in KINDS:
                with (directory / f"{kind}.csv").open("rb") as stream:
                    job.check(kind, stream)
            checked = time.perf_counter() - began
            if job.errors:
                raise SystemExit(f"bad rows: {job.errors[:3]}")
            result = job.run(Actor("bench:import", role="admin"), policy,
                             files={k: f"{k}.csv" for k in KINDS})
    seconds = time.perf_counter() - began
    engine.dispose()
    return {"rows": result.donors + result.affiliations + result.gifts, "gifts": result.gifts,
            "outcomes": dict(result.outcomes), "seconds": seconds, "check_seconds": checked,
            "peak_mb": _peak_mb(), "peak_mb_before": before, "hwm_mb": _hwm_mb()}


def run_export(url: str) -> dict:
    from app.ledger.csv_export import GIFT_HEADER, GiftFilters, csv_chunks, gift_rows

    engine, sessions, _policy = _ledger(url)
    before = _peak_mb()
    began = time.perf_counter()
    size = rows = 0
    with sessions() as session:
        for chunk in csv_chunks(GIFT_HEADER, gift_rows(session, GiftFilters())):
            size += len(chunk.encode())
            rows += chunk.count("\r\n")
    seconds = time.perf_counter() - began
    engine.dispose()
    return {"rows": rows - 1, "bytes": size, "seconds": seconds, "peak_mb": _peak_mb(),
            "peak_mb_before": before, "hwm_mb": _hwm_mb()}


def main(argv: list[str]) -> None:
    if argv[0] == "import":
        out = run_import(argv[1], Path(argv[2]), date.fromisoformat(argv[3]))
    elif argv[0] == "export":
        out = run_export(argv[1])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
