"""Staff pages for the relationship beyond money: recording an interaction on a donor's
timeline, tasks ("my tasks" and a donor's), and a donor's contact preferences.

Every write goes through app.ledger.contacts (audited). The donor's page shows the
timeline, the open tasks and short forms that post here; a refused form comes back on a
page of its own, with the messages next to the fields.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import NotAllowed
from app.extensions import state
from app.http_errors import answer_for
from app.ledger import contacts
from app.web.access import get_or_404, role_required
from app.web.formtools import INVALID, attempt, blank_to_none
from models import Donor, Task, User
from models.contacts import INTERACTION_KINDS
from models.schemas import ContactPreferences, InteractionCreate, TaskCreate

bp = Blueprint("contacts", __name__, url_prefix="/staff")

KIND_LABELS = {"call": "Call", "meeting": "Meeting", "email": "E-mail", "event": "Event",
               "letter": "Letter", "note": "Note"}


class InteractionForm(FlaskForm):
    kind = SelectField("Kind", choices={k: KIND_LABELS[k] for k in INTERACTION_KINDS})
    occurred_on = DateField("Date", validators=[InputRequired()])
    summary = StringField("Summary", validators=[DataRequired(), Length(max=200)],
                          description="One line: what it was about.")
    note = TextAreaField("Note", validators=[Optional(), Length(max=10_000)])


class TaskForm(FlaskForm):
    title = StringField("Task", validators=[DataRequired(), Length(max=200)])
    due_on = DateField("Due", validators=[InputRequired()])
    assignee_id = SelectField("For", choices={})
    note = TextAreaField("Note", validators=[Optional(), Length(max=10_000)])


class ContactPreferencesForm(FlaskForm):
    do_not_contact = BooleanField(
        "Do not contact", description="No appeals, calls or newsletters. Receipts the law "
                                      "requires still go out.")
    email_ok = BooleanField("E-mail is welcome")
    post_ok = BooleanField("Post is welcome")
    phone_ok = BooleanField("Phone calls are welcome")


def _staff_choices() -> dict[str, str]:
    users = get_session().execute(
        select(User.id, User.email).where(User.active).order_by(User.email)).all()
    return {str(uid): email for uid, email in users}


# Prefixed: the donor's page holds both forms, and their field ids must not collide.
def task_form() -> TaskForm:
    form = TaskForm(prefix="task")
    form.assignee_id.choices = _staff_choices()
    if not form.is_submitted():
        form.assignee_id.data = str(current_user.user_id)
        form.due_on.data = state().today() + timedelta(days=7)
    return form


def interaction_form() -> InteractionForm:
    form = InteractionForm(prefix="interaction")
    if not form.is_submitted():
        form.occurred_on.data = state().today()
    return form


# --- interactions -------------------------------------------------------------------------

@bp.route("/donors/<int:donor_id>/interactions/new", methods=["GET", "POST"])
@role_required("contacts.write")
def new_interaction(donor_id: int):
    donor = get_or_404(Donor, donor_id)
    form = interaction_form()
    if form.validate_on_submit():
        ok, _ = attempt(form, lambda: contacts.record_interaction(
            get_session(), donor_id, InteractionCreate(
                kind=form.kind.data, occurred_on=form.occurred_on.data,
                summary=form.summary.data, note=blank_to_none(form.note.data)), g.actor))
        if ok:
            flash(f"{KIND_LABELS[form.kind.data]} recorded.", "success")
            return redirect(url_for("donors.detail", donor_id=donor_id, _anchor="h-timeline"))
    status = INVALID if request.method == "POST" else 200
    return render_template("contacts/interaction_form.html", form=form, donor=donor), status


# --- tasks --------------------------------------------------------------------------------

@bp.get("/tasks")
@role_required(READ)
def tasks():
    """My tasks (or another's, or everyone's), open or done."""
    session = get_session()
    status = request.args.get("status", "open")
    if status not in ("open", "done", "all"):
        status = "open"
    who = request.args.get("assignee", "me")
    # ASCII digits only ("²".isdigit() is true), and an id a database can hold.
    assignee = (current_user.user_id if who == "me"
                else int(who) if who.isascii() and who.isdigit() and len(who) <= 18 else None)
    listed = contacts.tasks_of(session, assignee_id=assignee,
                               status=None if status == "all" else status, limit=500)
    names = dict(session.execute(select(Donor.id, Donor.name).where(
        Donor.id.in_({t.donor_id for t in listed if t.donor_id}))).all()) if listed else {}
    return render_template("contacts/tasks.html", tasks=listed, donor_names=names,
                           staff=_staff_choices(), status=status, who=who,
                           today=state().today())


@bp.route("/tasks/new", methods=["GET", "POST"])
@role_required("contacts.write")
def new_task():
    donor_id = request.args.get("donor_id", type=int)
    donor = get_or_404(Donor, donor_id) if donor_id else None
    form = task_form()
    if form.validate_on_submit():
        ok, _ = attempt(form, lambda: contacts.create_task(get_session(), TaskCreate(
            title=form.title.data, due_on=form.due_on.data,
            assignee_id=int(form.assignee_id.data), donor_id=donor_id,
            note=blank_to_none(form.note.data)), g.actor))
        if ok:
            flash("Task added.", "success")
            if donor:
                return redirect(url_for("donors.detail", donor_id=donor.id, _anchor="h-tasks"))
            return redirect(url_for("contacts.tasks"))
    status = INVALID if request.method == "POST" else 200
    return render_template("contacts/task_form.html", form=form, donor=donor), status


@bp.post("/tasks/<int:task_id>/done")
@role_required("contacts.write")
def task_done(task_id: int):
    task = get_or_404(Task, task_id)
    try:
        contacts.complete_task(get_session(), task_id, g.actor)
        flash(f"Done: {task.title}.", "success")
    except NotAllowed as error:
        flash(answer_for(error).message, "error")
    back = request.form.get("next", "")
    # Only our own pages: a crafted form must not send staff elsewhere.
    if not back.startswith("/staff/"):
        back = url_for("contacts.tasks")
    return redirect(back)


# --- contact preferences ------------------------------------------------------------------

@bp.route("/donors/<int:donor_id>/contact", methods=["GET", "POST"])
@role_required("donors.write")
def contact_preferences(donor_id: int):
    donor = get_or_404(Donor, donor_id)
    form = ContactPreferencesForm(obj=donor)
    if form.validate_on_submit():
        ok, _ = attempt(form, lambda: contacts.set_contact_preferences(
            get_session(), donor_id, ContactPreferences(
                do_not_contact=form.do_not_contact.data, email_ok=form.email_ok.data,
                post_ok=form.post_ok.data, phone_ok=form.phone_ok.data), g.actor))
        if ok:
            flash("Contact preferences saved.", "success")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("contacts/preferences_form.html", form=form, donor=donor), status
