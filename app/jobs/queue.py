"""The queue: huey, on a SQLite file in JOBS_DIR by default, or on Redis with REDIS_URL.

The queue carries only job ids; everything else is in the job row. Every process that
enqueues or consumes builds the same queue from the same settings (`install`, called by
create_app), with one task, `run_job`.
"""

from __future__ import annotations

from flask import Flask
from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from app.jobs import EXTENSION, _private_dir, jobs_dir, run_job

#: The huey instance's name: its SQLite tables' or Redis keys' prefix.
NAME = "armslength"


def make_huey(app: Flask) -> Huey:
    # No results stored: the job row is the record of how a job ended.
    if app.config["REDIS_URL"]:
        return RedisHuey(NAME, url=app.config["REDIS_URL"], results=False)
    path = _private_dir(jobs_dir(app)) / "queue.sqlite3"
    return SqliteHuey(NAME, filename=str(path), results=False)


def install(app: Flask) -> None:
    huey = make_huey(app)

    # No retries: a failed job is shown as failed; starting it again is a person's choice.
    @huey.task(name="run_job", retries=0)
    def run_job_task(job_id: int) -> None:
        run_job(app, job_id)

    app.extensions[EXTENSION] = run_job_task
    app.extensions[EXTENSION + ".huey"] = huey


def queue_of(app: Flask) -> Huey:
    return app.extensions[EXTENSION + ".huey"]


def consumer(app: Flask, *, workers: int = 1, **options):
    """A huey consumer of this app's queue, running jobs in threads."""
    return queue_of(app).create_consumer(workers=workers, worker_type="thread", periodic=False,
                                         **options)
