"""The jobs' commands: `armslength worker`, `import-csv` and `requeue-job`."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import click
from flask import Flask

from app import jobs
from app.jobs.imports import earlier_import, permissions_for
from app.ledger.audit import Actor
from app.ledger.csv_import import COLUMNS, KINDS
from models import Job

#: Who an import from the command line acts as: whoever runs the server (as for seal-rows).
CLI_ACTOR = Actor("cli", role="admin")
#: Bad rows printed when an import fails (the rest are counted).
PRINTED = 50


def file_kind(path: Path) -> str:
    """donors, affiliations or gifts, from the file's header line (its columns say which)."""
    with open(path, encoding="utf-8-sig", newline="") as stream:
        try:
            header = {name.strip().lower() for name in next(csv.reader(stream), [])}
        except (UnicodeDecodeError, csv.Error):
            header = set()
    for kind in ("gifts", "affiliations", "donors"):  # most specific first
        if set(COLUMNS[kind].required) <= header:
            return kind
    raise click.UsageError(
        f"{path}: the first line does not name the columns of a donors, affiliations or gifts "
        f"file (docs/import.md); e.g. {','.join(COLUMNS['gifts'].required)}")


class _Bars:
    """One progress bar per phase (checking, importing), on standard error."""

    def __init__(self):
        self.bar = None
        self.phase = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = click.progressbar(length=max(total, 1), label=f"{phase:<10}",
                                         file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.length = max(total, 1)
        # Redrawn every half per cent, not per row: a terminal redraw per gift of a
        # million-row file would cost more than the import.
        if done >= total or done - self.bar.pos >= max(1, total // 200):
            self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _report_failure(job: Job) -> None:
    click.echo(f"error: {job.error}", err=True)
    outcome = job.result or {}
    names = outcome.get("names", {})
    listed = outcome.get("errors", [])[:PRINTED]
    for error in listed:
        name = names.get(error["file"], error["file"])
        click.echo(f"  {name} line {error['line']}: {'; '.join(error['reasons'])}", err=True)
    if outcome.get("errors_total", 0) > len(listed):
        click.echo(f"  ... and {outcome['errors_total'] - len(listed)} more bad rows; "
                   "--dry-run checks without importing", err=True)


def register(app: Flask) -> None:
    @app.cli.command("worker")
    @click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
                  help="jobs run at the same time (threads)")
    def worker(workers: int):
        """Run background jobs (CSV imports, exports) from the queue until stopped."""
        from app.jobs.queue import consumer

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        consumer(app, workers=workers).run()

    @app.cli.command("import-csv")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True,
                  help="check every row and report the bad ones; write nothing")
    def import_csv(files: tuple[Path, ...], dry_run: bool):
        """Import donors, affiliations and gifts CSV files (docs/import.md), all or nothing.

        Each FILE's kind is read from its header line; give one file of each kind at most.
        Rows are checked, then every gift goes through the policy in date order, as on the
        staff import page. Exit status 1 if any row is bad or the ledger refuses one."""
        by_kind: dict[str, Path] = {}
        for path in files:
            kind = file_kind(path)
            if kind in by_kind:
                raise click.UsageError(f"two {kind} files: {by_kind[kind]} and {path}")
            by_kind[kind] = path
        paths = {kind: by_kind[kind].resolve() for kind in KINDS if kind in by_kind}
        names = {kind: path.name[:200] for kind, path in paths.items()}
        sessions = app.extensions["armslength"].sessions
        with sessions() as session:
            digest = None
            if not dry_run:
                streams = [(kind, open(path, "rb")) for kind, path in paths.items()]  # noqa: SIM115
                try:
                    digest = jobs.files_sha256(streams)
                finally:
                    for _, stream in streams:
                        stream.close()
                earlier = earlier_import(session, digest)
                if earlier is not None:
                    click.echo(f"error: these files were {earlier[1]} (job {earlier[0]}); "
                               "nothing was started", err=True)
                    sys.exit(1)
            job = jobs.create(session, "csv_import", CLI_ACTOR,
                              {"names": names, "dry_run": dry_run,
                               "paths": {kind: str(path) for kind, path in paths.items()}},
                              input_sha256=digest, permissions=permissions_for(paths))
            job_id = job.id
        bars = _Bars()
        try:
            job = jobs.run_job(app, job_id, on_progress=bars)
        finally:
            bars.close()
        if job.status != "done":
            _report_failure(job)
            sys.exit(1)
        outcome = job.result
        if dry_run:
            staged = ", ".join(f"{outcome['staged'][kind]} {kind}" for kind in paths)
            click.echo(f"dry run (job {job_id}): every row is good; would import {staged}; "
                       "nothing was written")
            for warning in outcome["warnings"]:
                click.echo(f"warning: {names[warning['file']]} line {warning['line']}: "
                           f"{warning['message']}", err=True)
            return
        result = outcome["result"]
        outcomes = result["outcomes"]
        click.echo(f"imported (job {job_id}): {result['donors']} donors, "
                   f"{result['affiliations']} affiliations, {result['gifts']} gifts "
                   f"({outcomes.get('accept', 0)} accepted, {outcomes.get('hold', 0)} held, "
                   f"{outcomes.get('reject', 0)} rejected)")
        for line, ref, outcome_name, why in result["not_accepted"]:
            click.echo(f"  line {line} {ref}: {outcome_name}: {why}")

    @app.cli.command("requeue-job")
    @click.argument("job_id", type=int)
    def requeue_job(job_id: int):
        """Put an unfinished job back on the queue (the worker died while running it). A
        job is idempotent: one that finished meanwhile is left alone by the worker."""
        sessions = app.extensions["armslength"].sessions
        with sessions() as session:
            job = session.get(Job, job_id)
            if job is None or job.finished:
                click.echo(f"error: job {job_id} is {'unknown' if job is None else job.status}; "
                           "only a queued or running job is queued again", err=True)
                sys.exit(1)
            if job.params.get("paths"):
                click.echo(f"error: job {job_id} was started by import-csv; run it again",
                           err=True)
                sys.exit(1)
        app.extensions[jobs.EXTENSION](job_id)
        click.echo(f"job {job_id} queued again")
