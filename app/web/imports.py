"""CSV import of donors, affiliations and historical gifts: a dry run, then all or nothing."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from sqlalchemy import func, select
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app import jobs
from app.db import get_session
from app.errors import LedgerBusy, NotAllowed, ValidationFailed
from app.extensions import state
from app.http_errors import answer_for
from app.jobs.imports import FILE_PERMISSIONS, earlier_import, permissions_for
from app.ledger import changes, rosters
from app.ledger.csv_import import COLUMNS, KINDS, CsvImport
from app.web.access import role_required
from app.web.changes import pending_message
from app.web.formtools import INVALID, ButtonForm, attempt, blank_to_none
from app.web.organizations import organization_choices
from models import Organization, RosterEntry
from models.schemas import RosterEntryCreate

bp = Blueprint("imports", __name__, url_prefix="/staff/import")


class ImportForm(FlaskForm):
    donors = FileField("donors.csv", validators=[FileAllowed(["csv"], "choose a .csv file")])
    affiliations = FileField("affiliations.csv",
                             validators=[FileAllowed(["csv"], "choose a .csv file")])
    gifts = FileField("gifts.csv", validators=[FileAllowed(["csv"], "choose a .csv file")])


def _page(form: ImportForm, status: int = 200, **context):
    return render_template("imports/index.html", form=form, columns=COLUMNS, kinds=KINDS,
                           **context), status


@bp.get("/")
@role_required("gifts.write")
def index():
    return _page(ImportForm())


@bp.post("/")
@role_required("gifts.write")
def upload():
    """A dry run checks here and now; an import is a background job (app/jobs/imports.py):
    the files are kept for the worker and the browser goes to the job's page."""
    form = ImportForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    files = {kind: form[kind].data for kind in KINDS
             if form[kind].data is not None and form[kind].data.filename}
    if not files:
        return _page(form, 400, problem="Choose at least one file.")
    for kind in files:
        if not current_user.can(FILE_PERMISSIONS[kind]):
            abort(403)
    names = {kind: (file.filename or kind)[:200] for kind, file in files.items()}
    session = get_session()
    if request.form.get("action") == "import":
        return _start_import(session, files, names)
    st = state()
    with CsvImport(session, today=st.today(), reporting_currency=st.reporting_currency,
                   max_gift_minor=st.max_gift_minor, policy=st.policy_for(session)) as job:
        for kind in KINDS:  # donors first: later files may name donors from this upload
            if kind in files:
                job.check(kind, files[kind].stream)
        context = {"names": names, "rows": job.rows, "staged": job.staged(), "errors": job.errors,
                   "dry_run": True, "warnings": job.warnings}
        if job.errors:
            return _page(form, 422, **context)
        return _page(form, 200, checked=True, **context)


def _start_import(session, files, names):
    streams = {kind: file.stream for kind, file in files.items()}
    digest = jobs.files_sha256(streams.items())
    earlier = earlier_import(session, digest)
    if earlier is not None:
        job_id, why = earlier
        return _page(ImportForm(formdata=None), 409,
                     problem=f"These files were {why} (job {job_id}); nothing was started.",
                     earlier=job_id)
    job = jobs.enqueue(current_app, session, "csv_import", g.actor, {"names": names},
                       files=streams, input_sha256=digest,
                       permissions=permissions_for(files))
    return redirect(url_for("jobs.show", job_id=job.id), 303)


# --- rosters: people at labs who are not donors ----------------------------------------------

class RosterForm(FlaskForm):
    roster = FileField("roster.csv", validators=[FileAllowed(["csv"], "choose a .csv file")])


def _roster_page(form: RosterForm, status: int = 200, **context):
    session = get_session()
    entries = session.execute(
        select(RosterEntry, Organization.name).join(
            Organization, Organization.id == RosterEntry.organization_id)
        .order_by(RosterEntry.id.desc()).limit(200)).all()
    total = session.execute(select(func.count()).select_from(RosterEntry)).scalar_one()
    return render_template("imports/roster.html", form=form, entries=entries, total=total,
                           required=rosters.REQUIRED, optional=rosters.OPTIONAL,
                           **context), status


@bp.get("/roster")
@role_required("review")
def roster():
    return _roster_page(RosterForm())


@bp.post("/roster")
@role_required("review")
def upload_roster():
    """A roster is checked whole first: one bad row and nothing is stored."""
    form = RosterForm()
    if not form.validate_on_submit():
        return _roster_page(form, 400)
    upload = form.roster.data
    if upload is None or not upload.filename:
        return _roster_page(form, 400, problem="Choose the roster file.")
    session = get_session()
    try:
        text = upload.read().decode("utf-8")
    except UnicodeDecodeError:
        return _roster_page(form, 422, problem="The file is not UTF-8 text; save it as "
                                               "\"CSV UTF-8\" and try again.")
    try:
        entries = rosters.read_roster(session, text)
        stored, rescreened = rosters.import_roster(session, entries, g.actor,
                                                   state().policy_for(session),
                                                   file_name=upload.filename[:200])
    except ValidationFailed as error:
        session.rollback()
        return _roster_page(form, 422, bad_rows=error.errors)
    except LedgerBusy as error:
        answer = answer_for(error)
        return _roster_page(form, answer.status, problem=answer.message)
    return _roster_page(RosterForm(formdata=None), 200, imported=len(stored),
                        rescreened=len(rescreened))


# --- one roster entry: corrected, ended or deleted under the two-person rule ------------------

class RosterEntryForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    title = StringField("Title", validators=[Optional(), Length(max=200)])
    organization_id = SelectField("Organisation", choices={}, validators=[DataRequired()])
    senior_decision_maker = BooleanField("Senior decision-maker")
    start_date = DateField("From", validators=[InputRequired()])
    end_date = DateField("Until (last day)", validators=[Optional()],
                         description="Set it once the person left; leave empty while the role lasts.")
    source = StringField("Source", validators=[DataRequired(), Length(max=500)])



def _roster_entry_or_404(entry_id: int) -> RosterEntry:
    entry = get_session().get(RosterEntry, entry_id)
    if entry is None:
        abort(404)
    return entry


@bp.route("/roster/<int:entry_id>/edit", methods=["GET", "POST"])
@role_required("review")
def edit_roster_entry(entry_id: int):
    """What widens the entry applies at once; ending it early or another narrowing edit at a
    covered lab waits for a second person (app.ledger.changes.propose_roster_change)."""
    session = get_session()
    entry = _roster_entry_or_404(entry_id)
    form = RosterEntryForm(obj=entry)
    form.organization_id.choices = organization_choices(session)
    if request.method == "GET":
        form.organization_id.data = str(entry.organization_id)
    if form.validate_on_submit():
        ok, result = attempt(form, lambda: changes.propose_roster_change(
            session, entry_id, RosterEntryCreate(
                name=form.name.data, title=blank_to_none(form.title.data),
                organization_id=int(form.organization_id.data),
                start_date=form.start_date.data, end_date=form.end_date.data,
                senior_decision_maker=form.senior_decision_maker.data,
                source=form.source.data), g.actor, state().policy_for(session)),
            names={"body": "end_date"})
        if ok:
            flash(f"Roster entry saved. {len(result.rescreened)} gift(s) re-screened.",
                  "warning" if result.rescreened else "success")
            if result.change is not None:
                flash(pending_message(result.change), "warning")
            return redirect(url_for("imports.roster"))
    status = INVALID if request.method == "POST" else 200
    return render_template("imports/roster_entry.html", form=form, entry=entry,
                           remove_form=ButtonForm()), status


@bp.post("/roster/<int:entry_id>/remove")
@role_required("review")
def remove_roster_entry(entry_id: int):
    session = get_session()
    _roster_entry_or_404(entry_id)
    if not ButtonForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("imports.edit_roster_entry", entry_id=entry_id))
    try:
        result = changes.propose_roster_removal(session, entry_id, g.actor,
                                                 state().policy_for(session))
    except NotAllowed as error:
        flash(f"Not deleted: {error}.", "error")
        return redirect(url_for("imports.edit_roster_entry", entry_id=entry_id))
    if result.change is not None:
        flash(pending_message(result.change), "warning")
    else:
        flash(f"Roster entry #{entry_id} deleted.", "success")
    return redirect(url_for("imports.roster"))
