"""Background jobs' pages: a job's progress and result (refreshing by itself, no script
needed), the same as JSON for polling, and its file for download.

Who may see a job is who could have done its work directly: every permission the job
names (an import's gifts.write and its files' permissions, an export's `exports`), checked
on each request, so a role taken away also takes away the job's output.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, send_file
from flask_login import current_user
from sqlalchemy import select

from app.auth.roles import READ
from app.db import get_session
from app.jobs import KINDS, job_view, may_see, output_path
from app.ledger.csv_import import COLUMNS
from app.ledger.csv_import import KINDS as IMPORT_FILES
from app.web.access import role_required
from models import Job

bp = Blueprint("jobs", __name__, url_prefix="/staff/jobs")

#: Seconds between two refreshes of an unfinished job's page.
REFRESH = 2


def job_or_404(job_id: int) -> Job:
    """The job, if the signed-in user may see it; deny by default."""
    job = get_session().get(Job, job_id)
    if job is None:
        abort(404)
    if not may_see(current_user.role, job):
        abort(403)
    return job


@bp.get("/")
@role_required(READ)
def index():
    jobs = get_session().execute(select(Job).order_by(Job.id.desc()).limit(200)).scalars()
    visible = [job for job in jobs if may_see(current_user.role, job)][:50]
    return render_template("jobs/index.html", jobs=visible, kinds=KINDS)


@bp.get("/<int:job_id>")
@role_required(READ)
def show(job_id: int):
    job = job_or_404(job_id)
    view = job_view(current_app, job)
    return render_template("jobs/show.html", job=job, view=view, kinds=KINDS, refresh=REFRESH,
                           columns=COLUMNS, import_files=IMPORT_FILES)


@bp.get("/<int:job_id>.json")
@role_required(READ)
def show_json(job_id: int):
    job = job_or_404(job_id)
    response = jsonify(job_view(current_app, job))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:job_id>/download")
@role_required(READ)
def download(job_id: int):
    job = job_or_404(job_id)
    path = output_path(current_app, job)
    if job.status != "done" or path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype="text/csv", as_attachment=True,
                         download_name=path.name, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
