"""Background jobs over the API: a job's status, progress and result (app/jobs). Routes
on the API blueprint (app.api.routes.bp)."""

from __future__ import annotations

from flask import current_app, g, jsonify

from app.api.access import ApiError, require
from app.api.routes import bp
from app.auth.roles import READ
from app.db import get_session
from app.jobs import job_view, may_see
from models import Job


@bp.get("/jobs/<int:job_id>")
@require(READ)
def get_job(job_id: int):
    """As /staff/jobs/<id>.json: only for a role that holds every permission the job's work
    needs (an import's, an export's)."""
    job = get_session().get(Job, job_id)
    if job is None:
        raise ApiError(404, f"no job has id {job_id}")
    if not may_see(g.api_user.role, job):
        raise ApiError(403, f"role {g.api_user.role!r} may not see this job "
                            f"({', '.join(job.permission_list)})")
    return jsonify(job_view(current_app, job))
