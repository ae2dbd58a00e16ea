"""In-kind arrangements: free model access, API credits and compute, mostly from labs.

They are not funding; they are conflicts of interest the organisation discloses, so the
list shows which lab, what, for what purpose, since when, and the value where known.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import changes, parties
from app.ledger.facts import CoveredOrganizations
from app.web.access import get_or_404, role_required
from app.web.changes import pending_message
from app.web.formtools import (
    INVALID,
    AmountField,
    attempt,
    blank_to_none,
    choice_arg,
    date_arg,
    id_arg,
    ordered,
    page_of,
    sort_from_args,
)
from app.web.organizations import coverage_label, organization_choices
from models import InKindArrangement, Organization
from models.money import format_amount
from models.schemas import InKindCreate

bp = Blueprint("inkind", __name__, url_prefix="/staff/in-kind")

PURPOSE_LABELS = {"evaluation": "Evaluation", "research": "Research", "other": "Other"}


class InKindForm(FlaskForm):
    organization_id = SelectField("Provided by", choices={}, validators=[DataRequired()])
    description = TextAreaField("What is provided", validators=[DataRequired(), Length(max=1000)],
                                description="e.g. pre-release API access to frontier models")
    purpose = SelectField("Purpose", choices=dict(PURPOSE_LABELS))
    start_date = DateField("Since", validators=[InputRequired()])
    end_date = DateField("Until", validators=[Optional()],
                         description="Leave empty while the arrangement lasts.")
    estimated_value = AmountField("Estimated value", validators=[Optional(), Length(max=40)],
                                  description="Optional, in major units; give a currency with it.")
    currency = StringField("Currency", validators=[Optional(), Length(max=3)],
                           description="ISO 4217 code, e.g. USD")

    def to_input(self) -> InKindCreate:
        return InKindCreate(
            organization_id=int(self.organization_id.data),
            description=self.description.data,
            purpose=self.purpose.data,
            start_date=self.start_date.data,
            end_date=self.end_date.data,
            estimated_value=blank_to_none(self.estimated_value.data),
            currency=blank_to_none(self.currency.data),
        )


#: The in-kind list's sortable columns; an ongoing arrangement sorts as ending last (the same
#: on SQLite and PostgreSQL, which put NULLs at opposite ends).
INKIND_SORT = {"since": InKindArrangement.start_date,
               "until": func.coalesce(InKindArrangement.end_date, date.max),
               "provider": func.lower(Organization.name), "purpose": InKindArrangement.purpose,
               "id": InKindArrangement.id}
#: ?status=: arrangements still running on the day, or ended before it.
INKIND_STATUSES = ("ongoing", "ended")


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    today = state().today()
    errors: list[str] = []
    purpose = choice_arg("purpose", "Purpose", PURPOSE_LABELS, errors)
    status = choice_arg("status", "Status", INKIND_STATUSES, errors)
    since_from = date_arg("from", "Since from", errors)
    since_to = date_arg("to", "Since to", errors)
    org_id = id_arg("organization")
    query = select(InKindArrangement).join(
        Organization, Organization.id == InKindArrangement.organization_id)
    if purpose:
        query = query.where(InKindArrangement.purpose == purpose)
    if status == "ongoing":
        query = query.where(or_(InKindArrangement.end_date.is_(None),
                                InKindArrangement.end_date >= today))
    elif status == "ended":
        query = query.where(InKindArrangement.end_date < today)
    if since_from:
        query = query.where(InKindArrangement.start_date >= since_from)
    if since_to:
        query = query.where(InKindArrangement.start_date <= since_to)
    if org_id:
        query = query.where(InKindArrangement.organization_id == org_id)
    sort = sort_from_args(INKIND_SORT, "since", descending=True,
                          desc_first=("since", "until", "id"))
    page, items = page_of(session, query.order_by(
        *ordered(sort, INKIND_SORT, InKindArrangement.id)), per_page=50)
    filters = {"purpose": purpose, "status": status, "from": since_from, "to": since_to,
               "organization": org_id}
    orgs = {o.id: o for o in session.execute(
        select(Organization).where(Organization.id.in_({i.organization_id for i in items}))
    ).scalars()}
    covered = CoveredOrganizations(session)
    return render_template(
        "inkind/index.html", items=items, page=page, orgs=orgs, purpose_labels=PURPOSE_LABELS,
        coverage={org_id: coverage_label(covered, org) for org_id, org in orgs.items()},
        today=today, sort=sort, filters=filters, filtered=any(filters.values()), errors=errors,
        statuses=INKIND_STATUSES, providers=organization_choices(session),
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required("in_kind.write")
def create():
    session = get_session()
    form = InKindForm()
    form.organization_id.choices = organization_choices(session)
    if request.method == "GET":
        form.organization_id.data = request.args.get("organization_id", "")
    if form.validate_on_submit():
        ok, item = attempt(form, lambda: parties.create_in_kind(session, form.to_input(), g.actor))
        if ok:
            flash("In-kind arrangement recorded.", "success")
            return redirect(url_for("inkind.index"))
    status = INVALID if request.method == "POST" else 200
    return render_template("inkind/form.html", form=form), status


@bp.route("/<int:item_id>/edit", methods=["GET", "POST"])
@role_required("in_kind.write")
def edit(item_id: int):
    """Edit or end an arrangement. At a covered lab, what would take disclosed support out
    of the disclosure (an end before today, a later start, other words, a lower value)
    waits for a second person; the rest applies at once (app.ledger.changes)."""
    session = get_session()
    item = get_or_404(InKindArrangement, item_id)
    form = InKindForm(obj=item if request.method == "GET" else None)
    form.organization_id.choices = organization_choices(session)
    if request.method == "GET":
        form.organization_id.data = str(item.organization_id)
        if item.estimated_value_minor is not None and item.currency:
            form.estimated_value.data = format_amount(item.estimated_value_minor, item.currency)
    if form.validate_on_submit():
        ok, result = attempt(form, lambda: changes.propose_in_kind_change(
            session, item_id, form.to_input(), g.actor, state().policy_for(session),
            state().today()))
        if ok:
            if result.change is not None:
                flash(pending_message(result.change), "warning")
            else:
                flash("In-kind arrangement saved.", "success")
            return redirect(url_for("inkind.index"))
    status = INVALID if request.method == "POST" else 200
    return render_template("inkind/form.html", form=form, item=item), status
