"""Background jobs: long work (a CSV import, a big export) that runs outside the request.

A row per job: what it is, who started it, where it stands and how it ended. The work
itself runs in the worker process (app/jobs); pages and the CLI read this row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

JOB_STATUSES = ("queued", "running", "done", "failed")

#: status -> the statuses it may move to. A job found "running" may be run again (the
#: worker died mid-way and the job was queued again): its work is idempotent.
JOB_MOVES: dict[str, tuple[str, ...]] = {
    "queued": ("running", "failed"),
    "running": ("running", "done", "failed"),
    "done": (),
    "failed": (),
}


class IllegalJobTransition(Exception):
    """A job status move that is not allowed (a finished job never runs again)."""

    def __init__(self, job_id: int | None, current: str, requested: str):
        super().__init__(f"job {job_id}: cannot move from {current!r} to {requested!r}")
        self.current = current
        self.requested = requested


class Job(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(in_list("status", JOB_STATUSES), name="status"),
        CheckConstraint("progress_done >= 0 AND progress_total >= 0", name="progress"),
        # "Is this file already being imported?": the newest job of a kind with a hash.
        Index("ix_job_kind_input_sha256", "kind", "input_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: What the job does: a key of app.jobs.KINDS ("csv_import", "export").
    kind: str = Field(max_length=40)
    status: str = Field(default="queued", max_length=10)
    #: The actor's label ("web:ann@example.org", "cli"), as the audit trail writes it.
    started_by: str = Field(max_length=200)
    #: The staff user who started it; None for the command line.
    started_by_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    started_by_role: str | None = Field(default=None, max_length=20)
    #: The permissions needed to start, see and download the job: those of the page that
    #: would have done the work directly (comma separated).
    permissions: str = Field(max_length=500)
    #: What the job was asked to do (file names, filters), as JSON.
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: SHA-256 of the input files (an import): the same files are never imported twice.
    input_sha256: str | None = Field(default=None, max_length=64)
    #: What the job is doing now ("checking", "importing", "writing").
    phase: str | None = Field(default=None, max_length=40)
    progress_done: int = 0
    progress_total: int = 0
    #: The outcome for people: counts, bad rows, the file made.
    result: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    #: Why a failed job failed, in one message.
    error: str | None = Field(default=None, sa_column=Column(Text))
    #: The file a job produced (an export), under JOBS_DIR/<id>/; None otherwise.
    output_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def move(self, status: str) -> None:
        """The one way a job's status changes."""
        if status not in JOB_MOVES[self.status]:
            raise IllegalJobTransition(self.id, self.status, status)
        now = utcnow()
        if status == "running":
            self.started_at = now
        elif status in ("done", "failed"):
            self.finished_at = now
        self.status = status

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def permission_list(self) -> list[str]:
        return [p for p in self.permissions.split(",") if p]
