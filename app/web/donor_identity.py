"""Who a donor is: a second record for the same person, and a reviewer's answers about it.

- Creating a person whose e-mail is already a donor's is refused on the donor form ("this is
  probably X"); a reviewer or admin may confirm a different person and create it anyway
  (/staff/donors/new/different-person), with a reason the audit keeps.
- A reviewer merges another record into a donor's (/staff/donors/<id>/merge): everything
  moves to the survivor and its affected gifts are re-screened (app.ledger.merge).
- A reviewer answers rule possible_senior_decision_maker on the donor page: the title is a
  senior decision-maker's (the flag is set) or it is not (cleared, not asked again).

The routes live on the donors blueprint: they are donor pages.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from app.db import get_session
from app.errors import NotAllowed, NotFound, ProbablySamePerson, ValidationFailed
from app.extensions import state
from app.http_errors import answer_for
from app.ledger import declarations, parties, titles
from app.ledger.merge import merge_donors
from app.web.access import get_or_404, role_required
from app.web.donors import DonorForm, bp, contact_input
from app.web.formtools import INVALID, attempt, blank_to_none
from app.web.organizations import organization_choices
from models import Affiliation, Donor, DonorMerge, Gift
from models.schemas import DonorCreate


class DifferentPersonForm(DonorForm):
    different_from = HiddenField(validators=[DataRequired()])
    confirm = BooleanField(
        "I checked: this is a different person from the recorded donor named above",
        validators=[DataRequired(message="Confirm that you checked it is a different person.")])
    reason = StringField("How you know it is a different person",
                         validators=[DataRequired(), Length(min=3, max=500)],
                         description="Kept in the audit trail, e.g. \"spouse sharing the "
                                     "family address; confirmed by phone\".")


class MergeForm(FlaskForm):
    duplicate_id = IntegerField("Donor number of the other record",
                                validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1)])
    confirm = BooleanField(
        "I checked: both records are this one person (or organisation)",
        validators=[DataRequired(message="Confirm that both records are one donor.")])


class TitleReviewForm(FlaskForm):
    reason = StringField("Why", validators=[DataRequired(), Length(min=3, max=2000)])


def same_person_notice(error: ProbablySamePerson) -> dict:
    """What the donor form shows for a refused duplicate: the record, and the way on."""
    return {"id": error.existing_id, "name": error.existing_name}


def _donor_input(form: DonorForm) -> DonorCreate:
    return DonorCreate(
        type=form.type.data,
        name=form.name.data,
        email=blank_to_none(form.email.data),
        organization_id=int(form.organization_id.data) if form.organization_id.data else None,
        category=form.category.data or None,
        anonymous=form.anonymous.data,
        **contact_input(form),
    )


@bp.route("/new/different-person", methods=["GET", "POST"])
@role_required("review")
def create_different_person():
    session = get_session()
    form = DifferentPersonForm()
    form.organization_id.choices = {"": "— none —", **organization_choices(session)}
    if request.method == "GET":
        for name in ("type", "name", "email", "different_from"):
            if request.args.get(name):
                getattr(form, name).data = request.args[name][:320]
        form.type.data = form.type.data or "person"
    same = None
    if form.different_from.data and str(form.different_from.data).isdigit():
        other = session.get(Donor, int(form.different_from.data))
        if other is not None:
            same = {"id": other.id, "name": other.name}
    if form.validate_on_submit():
        try:
            ok, donor = attempt(form, lambda: parties.create_donor(
                session, _donor_input(form), g.actor,
                different_person_from=int(form.different_from.data),
                reason=form.reason.data), names={"body": "category"})
        except ProbablySamePerson as error:
            # The address is another donor's than the one compared: compare with that one.
            form.form_errors = [*form.form_errors, answer_for(error).message]
            form.different_from.data = str(error.existing_id)
            ok, donor, same = False, None, same_person_notice(error)
        except NotAllowed as error:
            form.form_errors = [*form.form_errors, str(error)]
            ok, donor = False, None
        if ok:
            flash(f"Donor {donor.name} created as a different person from donor "
                  f"{form.different_from.data}.", "success")
            return redirect(url_for("donors.detail", donor_id=donor.id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/different_person.html", form=form, same=same), status


def _merge_candidates(donor: Donor) -> list[Donor]:
    """Records that look like this donor's second one: the same e-mail or the same name."""
    session = get_session()
    ids = {i for i, _ in parties.same_email_donors(session, donor.email, exclude=donor.id)}
    ids |= set(session.execute(
        select(Donor.id).where(func.lower(Donor.name) == donor.name.lower(),
                               Donor.id != donor.id, Donor.type == donor.type).limit(20)
    ).scalars())
    merged = select(DonorMerge.duplicate_id)
    if not ids:
        return []
    return list(session.execute(
        select(Donor).where(Donor.id.in_(ids), Donor.id.not_in(merged)).order_by(Donor.id)
    ).scalars())


def _merge_message(result) -> str:
    gifts = len(result.moved.get("gift.donor_id", []))
    held = len(result.rescreened_gift_ids)
    moved = ", ".join(f"{len(ids)} {name.split('.')[0].replace('_', ' ')} row(s)"
                      for name, ids in sorted(result.moved.items())) or "nothing"
    text = (f"Donor {result.duplicate_id} merged into this record ({gifts} gift(s); "
            f"moved: {moved}).")
    if held:
        text += (f" {held} gift(s) re-screened with both records' affiliations and put on "
                 "hold for a reviewer (see the review queue).")
    return text


@bp.route("/<int:donor_id>/merge", methods=["GET", "POST"])
@role_required("review")
def merge(donor_id: int):
    session = get_session()
    donor = get_or_404(Donor, donor_id)
    survivor = parties.merged_into(session, donor_id)
    if survivor is not None:
        return redirect(url_for("donors.merge", donor_id=survivor))
    form = MergeForm()
    if request.method == "GET" and request.args.get("duplicate_id", "").isdigit():
        form.duplicate_id.data = int(request.args["duplicate_id"])
    if form.validate_on_submit():
        policy = state().policy_for(session)
        try:
            ok, result = attempt(form, lambda: merge_donors(
                session, donor_id, form.duplicate_id.data, g.actor, policy))
        except (NotFound, NotAllowed) as error:
            form.duplicate_id.errors = [*form.duplicate_id.errors, str(error)]
            ok, result = False, None
        if ok:
            flash(_merge_message(result), "warning" if result.rescreened_gift_ids else "success")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    candidates = _merge_candidates(donor)
    gift_counts = dict(session.execute(
        select(Gift.donor_id, func.count()).where(Gift.donor_id.in_([d.id for d in candidates]))
        .group_by(Gift.donor_id)
    ).all()) if candidates else {}
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/merge.html", form=form, donor=donor, candidates=candidates,
                           gift_counts=gift_counts), status


@bp.post("/<int:donor_id>/affiliations/<int:affiliation_id>/title-review")
@role_required("review")
def review_title(donor_id: int, affiliation_id: int):
    session = get_session()
    get_or_404(Donor, donor_id)
    affiliation = get_or_404(Affiliation, affiliation_id)
    if affiliation.donor_id != donor_id:
        abort(404)
    form = TitleReviewForm()
    senior = request.form.get("answer") == "senior"
    if not form.validate_on_submit():
        flash("Say why, in a few words, before answering about the title.", "error")
        return redirect(url_for("donors.detail", donor_id=donor_id))
    try:
        _, rescreened = titles.review_title(session, affiliation_id, senior, form.reason.data,
                                            g.actor, state().policy_for(session))
    except NotAllowed as error:
        flash(str(error), "error")
        return redirect(url_for("donors.detail", donor_id=donor_id))
    if senior:
        flash(f"Marked a senior decision-maker. {len(rescreened)} gift(s) re-screened and put "
              "on hold for a reviewer.", "warning" if rescreened else "success")
    else:
        flash(f"Title \u201c{affiliation.title}\u201d recorded as not senior; it will not be "
              "asked about again unless it changes. Decide the gifts it held in the review "
              "queue.", "success")
    return redirect(url_for("donors.detail", donor_id=donor_id))


@bp.post("/<int:donor_id>/refused-declarations/<int:refused_id>/dismiss")
@role_required("review")
def dismiss_refused_declaration(donor_id: int, refused_id: int):
    """A reviewer does not believe a declaration refused before payment under this donor's
    e-mail: later donate-form gifts from the e-mail are no longer held for it."""
    session = get_session()
    get_or_404(Donor, donor_id)
    form = TitleReviewForm()  # one "why" field, with the CSRF token
    if not form.validate_on_submit():
        flash("Say why, in a few words, before dismissing a refused declaration.", "error")
        return redirect(url_for("donors.detail", donor_id=donor_id))
    try:
        declarations.dismiss_refusal(session, refused_id, donor_id, g.actor, form.reason.data)
    except NotFound:
        abort(404)
    except (NotAllowed, ValidationFailed) as error:
        flash(f"Not dismissed: {error}.", "error")
        return redirect(url_for("donors.detail", donor_id=donor_id))
    flash(f"Refused declaration #{refused_id} dismissed: later gifts from this e-mail are not "
          "held for it. Decide the gifts it held in the review queue.", "success")
    return redirect(url_for("donors.detail", donor_id=donor_id))
