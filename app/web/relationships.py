"""Staff pages for relationships between people and the household they make.

The donor's page lists a person's relationships, with a short form to record one (it
applies at once and re-screens: app.ledger.relationships) and, per relationship, ending
or deleting it (through app.ledger.changes: a second person approves when it could let
money through). The household page shows the members, combined giving and soft credits.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import changes, relationships
from app.web.access import get_or_404, role_required
from app.web.changes import pending_message, rescreen_message
from app.web.formtools import INVALID, ButtonForm, attempt
from models import Donor, Relationship
from models.relationships import RELATIONSHIP_KINDS
from models.schemas import RelationshipCreate

bp = Blueprint("relationships", __name__, url_prefix="/staff")

KIND_LABELS = {"household": "Household", "spouse_partner": "Spouse or partner",
               "family": "Family", "colleague": "Colleague"}


class RelationshipForm(FlaskForm):
    related_donor_id = IntegerField("Related person's donor number",
                                    validators=[InputRequired(), NumberRange(min=1)])
    kind = SelectField("Relationship", choices={k: KIND_LABELS[k] for k in RELATIONSHIP_KINDS})
    start_date = DateField("From", validators=[InputRequired()])
    end_date = DateField("Until (leave empty while it lasts)", validators=[Optional()])


class EndForm(FlaskForm):
    end_date = DateField("Last day", validators=[InputRequired()])



def relationship_form() -> RelationshipForm:
    return RelationshipForm(prefix="relationship")


@bp.route("/donors/<int:donor_id>/relationships/new", methods=["GET", "POST"])
@role_required("affiliations.write")
def new_relationship(donor_id: int):
    session = get_session()
    donor = get_or_404(Donor, donor_id)
    if donor.type != "person":
        abort(404)
    form = relationship_form()
    if form.validate_on_submit():
        policy = state().policy_for(session)
        ok, result = attempt(form, lambda: relationships.add_relationship(
            session, donor_id, RelationshipCreate(
                related_donor_id=form.related_donor_id.data, kind=form.kind.data,
                start_date=form.start_date.data, end_date=form.end_date.data),
            g.actor, policy))
        if ok:
            _rel, rescreened = result
            flash(f"Relationship recorded. {rescreen_message(len(rescreened))}",
                  "warning" if rescreened else "success")
            return redirect(url_for("donors.detail", donor_id=donor_id) + "#relationships", 303)
    status = INVALID if request.method == "POST" else 200
    return render_template("relationships/form.html", form=form, donor=donor), status


def _of(donor_id: int, relationship_id: int) -> Relationship:
    """The relationship, only through one of its two people."""
    get_or_404(Donor, donor_id)
    rel = get_or_404(Relationship, relationship_id)
    if donor_id not in (rel.donor_id, rel.related_donor_id):
        abort(404)
    return rel


@bp.post("/donors/<int:donor_id>/relationships/<int:relationship_id>/end")
@role_required("affiliations.write")
def end_relationship(donor_id: int, relationship_id: int):
    session = get_session()
    _of(donor_id, relationship_id)
    form = EndForm()
    back = url_for("donors.detail", donor_id=donor_id) + "#relationships"
    if not form.validate_on_submit():
        flash("Give the relationship's last day.", "error")
        return redirect(back, 303)
    ok, result = attempt(form, lambda: changes.propose_relationship_end(
        session, relationship_id, form.end_date.data, g.actor, state().policy_for(session)))
    if not ok:
        flash("; ".join(m for msgs in form.errors.values() for m in msgs) or
              "The relationship was not ended.", "error")
    elif result.change is not None:
        flash(pending_message(result.change), "warning")
    else:
        flash("Relationship ended.", "success")
    return redirect(back, 303)


@bp.post("/donors/<int:donor_id>/relationships/<int:relationship_id>/remove")
@role_required("affiliations.write")
def remove_relationship(donor_id: int, relationship_id: int):
    session = get_session()
    _of(donor_id, relationship_id)
    back = url_for("donors.detail", donor_id=donor_id) + "#relationships"
    if not ButtonForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(back, 303)
    result = changes.propose_relationship_removal(session, relationship_id, g.actor,
                                                  state().policy_for(session))
    if result.change is not None:
        flash(pending_message(result.change), "warning")
    else:
        flash("Relationship deleted.", "success")
    return redirect(back, 303)


@bp.get("/households/<int:donor_id>")
@role_required(READ)
def household(donor_id: int):
    session = get_session()
    get_or_404(Donor, donor_id)
    st = state()
    today = st.today()
    found = relationships.household(session, donor_id, st.reporting_currency, today)
    if found.id != donor_id:  # one address per household: its smallest member's
        return redirect(url_for("relationships.household", donor_id=found.id))
    names = {m.donor.id: m.donor.name for m in found.members}
    return render_template("relationships/household.html", household=found, today=today,
                           names=names, kind_labels=KIND_LABELS)
