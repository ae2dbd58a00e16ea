"""Donor segments in the staff app: a donors-list search saved under a name, the list of
segments, and the helpers other lists use to narrow themselves to a segment's members
(?segment=ID on the donors list, the acknowledgements page and the reports).

The donors list's filter and a segment's criteria are one thing (SegmentCriteria): the
list's query string uses the criteria's own names, so "save this search" stores exactly
what the list showed, and a saved segment opens as that list again.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import ValidationFailed
from app.extensions import state
from app.ledger import campaigns, segments
from app.web.access import role_required
from app.web.formtools import INVALID, attempt, blank_to_none, id_arg
from models import Organization, Segment
from models.schemas import SegmentCreate, SegmentCriteria, field_errors

bp = Blueprint("segments", __name__, url_prefix="/staff/segments")

#: The criteria's names, in the order the filter form shows them.
CRITERIA = tuple(SegmentCriteria.model_fields)
LABELS = {"q": "Search", "type": "Type", "giving_min": "Lifetime giving from",
          "giving_max": "Lifetime giving to", "first_gift_from": "First gift from",
          "first_gift_to": "First gift to", "last_gift_from": "Last gift from",
          "last_gift_to": "Last gift to", "campaign_id": "Gave to campaign",
          "fund_id": "Gave to fund", "organization_id": "Affiliated with",
          "household": "In a household", "tag": "Tag"}


def criteria_from_args() -> tuple[SegmentCriteria, dict[str, list[str]]]:
    """The donors-list filter in the query string as criteria. A criterion that does not
    read is left out and named in the errors (field -> messages), never the whole filter."""
    given = {name: request.args[name].strip()[:200] for name in CRITERIA
             if request.args.get(name, "").strip()}
    errors: dict[str, list[str]] = {}
    while True:
        try:
            criteria = SegmentCriteria.model_validate(given)
            segments.giving_bounds(criteria, state().reporting_currency)
            return criteria, errors
        except ValidationError as error:
            found = field_errors(error)
        except ValidationFailed as error:
            found = {k.removeprefix("criteria."): v for k, v in error.errors.items()}
        dropped = False
        for location, messages in found.items():
            name = location.split(".")[0]
            if name not in given:  # a message about two fields: drop the later one
                name = next((n for n in reversed(CRITERIA) if n in given and n in
                             " ".join(messages)), None) or next(reversed(given), None)
            if name is None:
                return SegmentCriteria(), errors
            errors.setdefault(name, []).extend(messages)
            given.pop(name, None)
            dropped = True
        if not dropped:
            return SegmentCriteria(), errors


def segment_arg(session: Session, errors: list[str]) -> Segment | None:
    """The saved segment named by ?segment=ID (an unknown one is named in `errors`)."""
    segment_id = id_arg("segment")
    if segment_id is None:
        return None
    segment = session.get(Segment, segment_id)
    if segment is None:
        errors.append(f"There is no segment {segment_id}; ignored.")
    return segment


def segment_donor_ids(session: Session, segment: Segment):
    """SELECT donor.id of the segment's members, for `... .in_()`."""
    return segments.member_ids(session, segments.criteria_of(segment), state().reporting_currency)


def segment_choices(session: Session) -> list[tuple[int, str]]:
    return [(s.id, s.name) for s in segments.all_segments(session)]


def filter_choices(session: Session) -> dict:
    """The choices of the donors-list filter's selects."""
    return {"campaign_id": campaigns.choices(session, "campaign"),
            "fund_id": campaigns.choices(session, "fund"),
            "organization_id": list(session.execute(
                select(Organization.id, Organization.name)
                .order_by(func.lower(Organization.name), Organization.id))),
            "tag": segments.all_tags(session)}


def describe(session: Session, criteria: SegmentCriteria) -> list[tuple[str, str]]:
    """(label, value) for each criterion given, in words (names, not ids)."""
    names = {"campaign_id": dict(campaigns.choices(session, "campaign")),
             "fund_id": dict(campaigns.choices(session, "fund"))}
    described = []
    for name, value in criteria.given().items():
        if name == "organization_id":
            org = session.get(Organization, value)
            value = org.name if org else f"organisation {value}"
        elif name in names:
            value = names[name].get(value, value)
        elif name.startswith("giving_"):
            value = f"{value} {state().reporting_currency}"
        described.append((LABELS[name], str(value)))
    return described


# --- pages -----------------------------------------------------------------------------------

class SegmentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)],
                       description="e.g. “Spring appeal: lapsed donors over $1,000”")
    description = TextAreaField("Description", validators=[Optional(), Length(max=500)])


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    currency = state().reporting_currency
    rows = []
    for segment in segments.all_segments(session):
        criteria = segments.criteria_of(segment)
        count = session.execute(select(func.count()).select_from(
            segments.members(session, criteria, currency).subquery())).scalar_one()
        rows.append((segment, count, describe(session, criteria)))
    return render_template("segments/index.html", rows=rows)


@bp.route("/new", methods=["GET", "POST"])
@role_required("segments.write")
def create():
    """Save the donors-list search in the address (?q=...&giving_min=...) under a name."""
    session = get_session()
    criteria, errors = criteria_from_args()
    form = SegmentForm()
    if form.validate_on_submit() and not errors and criteria.given():
        ok, segment = attempt(form, lambda: segments.create_segment(
            session, SegmentCreate(name=form.name.data,
                                   description=blank_to_none(form.description.data),
                                   criteria=criteria),
            state().reporting_currency, g.actor))
        if ok:
            flash(f"Segment “{segment.name}” saved.", "success")
            return redirect(url_for("donors.index", segment=segment.id))
    status = INVALID if form.errors or form.form_errors else 200
    if request.method == "POST" and not criteria.given():
        status = INVALID
    count = session.execute(select(func.count()).select_from(
        segments.members(session, criteria, state().reporting_currency).subquery())).scalar_one()
    return render_template("segments/form.html", form=form, criteria=criteria,
                           described=describe(session, criteria), errors=errors,
                           count=count), status
