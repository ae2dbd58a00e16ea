"""JSON API for the relationship beyond money: a donor's interactions, staff tasks, contact
preferences and giving summary (docs/api.md, "Relationships")."""

from __future__ import annotations

from flask import g, jsonify

from app.api.access import ApiError, parse_body, query_choice, query_int, require
from app.api.idempotency import recording
from app.api.routes import _created, _get, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import contacts
from app.ledger.profile import giving_summary
from app.presenters.contacts import (
    giving_public,
    interaction_public,
    preferences_public,
    task_public,
)
from models import Donor, Task, User
from models.contacts import TASK_STATUSES
from models.schemas import ContactPreferences, InteractionCreate, TaskCreate

MAX_ID = 2**63 - 1


@bp.get("/donors/<int:donor_id>/interactions")
@require(READ)
def list_interactions(donor_id: int):
    _get(Donor, donor_id, "donor")
    limit = query_int("limit", 50, 1, 500)
    before_id = query_int("before_id", None, 1, MAX_ID)
    rows = contacts.timeline(get_session(), donor_id, limit, before_id)
    return jsonify({"interactions": [interaction_public(i, author) for i, author in rows],
                    "next_before_id": rows[-1][0].id if len(rows) == limit else None})


@bp.post("/donors/<int:donor_id>/interactions")
@require("contacts.write")
@recording
def create_interaction(donor_id: int):
    _get(Donor, donor_id, "donor")
    data = parse_body(InteractionCreate)
    session = get_session()
    item = contacts.record_interaction(session, donor_id, data, g.actor)
    return _created(interaction_public(item, session.get(User, item.author_id).email))


@bp.put("/donors/<int:donor_id>/contact-preferences")
@require("donors.write")
@recording
def put_contact_preferences(donor_id: int):
    data = parse_body(ContactPreferences)
    donor = contacts.set_contact_preferences(get_session(), donor_id, data, g.actor)
    return jsonify(preferences_public(donor))


@bp.get("/donors/<int:donor_id>/giving")
@require(READ)
def get_giving(donor_id: int):
    _get(Donor, donor_id, "donor")
    st = state()
    summary = giving_summary(get_session(), donor_id, st.reporting_currency, st.today())
    return jsonify(giving_public(summary, st.reporting_currency))


@bp.get("/tasks")
@require(READ)
def list_tasks():
    status = query_choice("status", (*TASK_STATUSES, "all")) or "open"
    assignee = query_int("assignee_id", None, 1, MAX_ID)
    donor_id = query_int("donor_id", None, 1, MAX_ID)
    if assignee is None and donor_id is None:
        if g.actor.user_id is None:
            raise ApiError(422, "invalid input", {"assignee_id": ["required for this token"]})
        assignee = g.actor.user_id  # "my tasks"
    tasks = contacts.tasks_of(get_session(), assignee_id=assignee, donor_id=donor_id,
                              status=None if status == "all" else status,
                              limit=query_int("limit", 100, 1, 500))
    return jsonify({"tasks": [task_public(t) for t in tasks]})


@bp.post("/tasks")
@require("contacts.write")
@recording
def create_task():
    task = contacts.create_task(get_session(), parse_body(TaskCreate), g.actor)
    return _created(task_public(task))


@bp.post("/tasks/<int:task_id>/complete")
@require("contacts.write")
@recording
def complete_task(task_id: int):
    _get(Task, task_id, "task")
    return jsonify(task_public(contacts.complete_task(get_session(), task_id, g.actor)))
