"""Background jobs: long work (CSV imports, big exports) run by the worker, not the request.

One way in: `enqueue(session, kind, actor, params, files=...)` writes a `job` row (kind,
who started it, status queued), keeps the uploaded files under JOBS_DIR/<id>/, and puts
the job's id on the queue (huey: a SQLite file by default, Redis with REDIS_URL). The
worker (`armslength worker`, the Procfile's `worker:` line) runs `run_job`, which moves
the row to running, calls the kind's function with a `JobContext`, and records done (with
a result) or failed (with an error). The command line runs the same function in its own
process (`run_here`). A new kind is one function:

    @job_kind("year_end_letters", permissions=("acknowledgements.post",))
    def year_end_letters(ctx: JobContext) -> dict:
        ... ctx.progress("writing", done, total) ...
        return {"letters": n}          # the job's result; raise JobFailed to fail it

Who may start, see and download a job is who could do the work directly: the kind's
permissions, checked again by the worker against the starter's role at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import Flask
from sqlalchemy.orm import Session

from app.auth.roles import allowed
from app.ledger.audit import Actor
from models import Job, User

#: Seconds between two progress writes: often enough for a page that refreshes every 2 s.
PROGRESS_EVERY = 0.25
#: The extension the queue and task live under in app.extensions.
EXTENSION = "armslength_jobs"


class JobFailed(Exception):
    """The job ends as failed with this message, and the result (bad rows, ...) if given."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.message = message
        self.result = result


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[JobContext], dict | None]
    #: What the starter must be allowed to do: the permissions of the page doing it directly.
    permissions: tuple[str, ...]
    label: str


KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, permissions: tuple[str, ...], label: str):
    """Register a function as the work of jobs of this kind."""

    def register(run):
        KINDS[name] = JobKind(name, run, tuple(permissions), label)
        return run

    return register


# --- files -----------------------------------------------------------------------------------

def jobs_dir(app: Flask) -> Path:
    return Path(app.config["JOBS_DIR"])


def job_dir(app: Flask, job_id: int) -> Path:
    return jobs_dir(app) / str(int(job_id))


def _private_dir(path: Path) -> Path:
    # Uploaded CSVs and exports hold donors' personal data: the app's user only.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def files_sha256(files: Iterable[tuple[str, IO[bytes]]]) -> str:
    """One hash over (name, content) pairs, in the order given. Rewinds each stream."""
    digest = hashlib.sha256()
    for name, stream in files:
        digest.update(name.encode() + b"\0")
        stream.seek(0)
        for block in iter(lambda s=stream: s.read(1 << 20), b""):
            digest.update(hashlib.sha256(block).digest())
        stream.seek(0)
    return digest.hexdigest()


def read_progress(app: Flask, job: Job) -> tuple[str | None, int, int]:
    """(phase, done, total): the live figures the worker writes while a job runs (a file,
    because on SQLite an import holds the database's one write lock throughout), else the
    row's."""
    if job.status == "running":
        try:
            live = json.loads((job_dir(app, job.id) / "progress.json").read_text())
            return live["phase"], int(live["done"]), int(live["total"])
        except (OSError, ValueError, KeyError):
            pass
    return job.phase, job.progress_done, job.progress_total


# --- starting a job --------------------------------------------------------------------------

def may_see(role: str | None, job: Job) -> bool:
    return all(allowed(role, permission) for permission in job.permission_list)


def create(session: Session, kind: str, actor: Actor, params: dict, *,
           input_sha256: str | None = None, permissions: tuple[str, ...] = ()) -> Job:
    """The job row, queued and committed (not yet on the queue). permissions: more than
    the kind's own, for this job (an import of a donors file needs donors.write)."""
    spec = KINDS[kind]
    needed = tuple(dict.fromkeys(spec.permissions + tuple(permissions)))
    job = Job(kind=kind, started_by=actor.label, started_by_id=actor.user_id,
              started_by_role=actor.role, permissions=",".join(needed),
              params=params, input_sha256=input_sha256)
    session.add(job)
    session.commit()
    return job


def enqueue(app: Flask, session: Session, kind: str, actor: Actor, params: dict, *,
            files: dict[str, IO[bytes]] | None = None, input_sha256: str | None = None,
            permissions: tuple[str, ...] = ()) -> Job:
    """Record a job, keep its input files, and put it on the queue for the worker."""
    job = create(session, kind, actor, params, input_sha256=input_sha256,
                 permissions=permissions)
    if files:
        inputs = _private_dir(job_dir(app, job.id) / "input")
        for name, stream in files.items():
            stream.seek(0)
            with open(inputs / f"{name}.csv", "wb") as out:
                shutil.copyfileobj(stream, out)
    app.extensions[EXTENSION](job.id)
    return job


def input_path(app: Flask, job_id: int, name: str) -> Path:
    return job_dir(app, job_id) / "input" / f"{name}.csv"


def output_path(app: Flask, job: Job) -> Path | None:
    if not job.output_name:
        return None
    return job_dir(app, job.id) / "output" / Path(job.output_name).name


# --- running a job ---------------------------------------------------------------------------

class JobContext:
    """What a kind's function gets: the job, a session, the actor, and a progress sink."""

    def __init__(self, app: Flask, job: Job, session: Session, actor: Actor,
                 on_progress: Callable[[str, int, int], None] | None = None):
        self.app = app
        self.job = job
        self.job_id = job.id
        self.params = dict(job.params)
        self.session = session
        self.actor = actor
        self.dir = _private_dir(job_dir(app, job.id))
        self._on_progress = on_progress
        self._last = 0.0
        #: (phase, done, total) last reported, and the file made: kept here, not on the row,
        #: so that a rollback of the work leaves them for the failed job's record.
        self.last_progress: tuple[str | None, int, int] = (None, 0, 0)
        self.output_name: str | None = None
        self.finished_in_transaction = False

    def input(self, name: str) -> Path:
        return input_path(self.app, self.job_id, name)

    def output(self, name: str) -> Path:
        """Where to write the job's file; the job page offers it for download when done."""
        self.output_name = Path(name).name
        return _private_dir(self.dir / "output") / self.output_name

    def progress(self, phase: str, done: int, total: int, *, force: bool = False) -> None:
        self.last_progress = (phase, done, total)
        if self._on_progress is not None:
            self._on_progress(phase, done, total)
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY:
            return
        self._last = now
        temporary = self.dir / "progress.json.tmp"
        temporary.write_text(json.dumps({"phase": phase, "done": done, "total": total}))
        os.replace(temporary, self.dir / "progress.json")

    def finish(self, session: Session, result: dict) -> None:
        """Mark the job done inside the caller's transaction, so that the work and its
        "done" commit together: a job re-run after a crash finds it done, or finds nothing
        written. The row is written by this session; the caller commits."""
        job = session.get(Job, self.job_id)
        job.move("done")
        job.result = result
        job.phase, job.progress_done, job.progress_total = self.last_progress
        job.output_name = self.output_name
        self.finished_in_transaction = True


def _starter(session: Session, job: Job) -> Actor:
    """Who the job acts as, if they may still do it: a role taken away, or an account
    deactivated, between the click and the run stops the job."""
    if job.started_by_id is None:
        return Actor(job.started_by, None, job.started_by_role)
    user = session.get(User, job.started_by_id)
    if user is None or not user.active or not may_see(user.role, job):
        raise JobFailed("the account that started this job may no longer do this work")
    return Actor(job.started_by, user.id, user.role)


def run_job(app: Flask, job_id: int,
            on_progress: Callable[[str, int, int], None] | None = None) -> Job | None:
    """Run one job to its end. A job already finished is left alone (the queue delivered it
    twice, or it was queued again after a crash): running it again would import twice."""
    sessions = app.extensions["armslength"].sessions
    with app.app_context(), sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.finished:
            return job
        try:
            actor = _starter(session, job)
        except JobFailed as failure:
            return _fail(session, job, failure)
        job.move("running")
        session.commit()
        ctx = JobContext(app, job, session, actor, on_progress)
        try:
            with sessions() as work:
                ctx.session = work
                result = KINDS[job.kind].run(ctx)
        except JobFailed as failure:
            return _fail(session, job, failure, ctx)
        except Exception as error:
            app.logger.exception("job %s (%s) failed", job_id, job.kind)
            return _fail(session, job, JobFailed(f"unexpected error: {type(error).__name__}"), ctx)
        finally:
            _drop_inputs(app, job_id)
        session.expire_all()
        job = session.get(Job, job_id)
        if not ctx.finished_in_transaction:
            job.move("done")
            job.result = result or {}
            job.phase, job.progress_done, job.progress_total = ctx.last_progress
            job.output_name = ctx.output_name
            session.commit()
        return job


def _fail(session: Session, job: Job, failure: JobFailed, ctx: JobContext | None = None) -> Job:
    session.rollback()
    session.expire_all()
    job = session.get(Job, job.id)
    if job.finished:
        # Another run of the same job (queued again while this one ran) ended it first;
        # its outcome stands, and this run wrote nothing.
        return job
    job.move("failed")
    job.error = failure.message[:2000]
    job.result = failure.result
    if ctx is not None:
        job.phase, job.progress_done, job.progress_total = ctx.last_progress
    session.commit()
    return job


def _drop_inputs(app: Flask, job_id: int) -> None:
    # The uploads hold personal data; once the job has ended nothing reads them again.
    shutil.rmtree(job_dir(app, job_id) / "input", ignore_errors=True)


def job_view(app: Flask, job: Job) -> dict:
    """The job as the JSON endpoint and the page show it."""
    phase, done, total = read_progress(app, job)
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "started_by": job.started_by,
        "phase": phase, "progress": {"done": done, "total": total},
        "result": job.result, "error": job.error, "output": job.output_name,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
