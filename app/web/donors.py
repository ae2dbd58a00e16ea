"""Donor screens: search, giving history, affiliations over time, and the forms that change them.

Every write goes through app.ledger.parties; adding or changing an affiliation re-screens
the person's affected past gifts there, and this page says how many were put on hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import case, func, or_, select
from sqlmodel import Session
from wtforms import BooleanField, DateField, EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from app.auth.roles import READ
from app.db import get_session
from app.errors import NotFound, ProbablySamePerson
from app.extensions import state
from app.http_errors import answer_for
from app.ledger import changes, contacts, declarations, parties, relationships, segments
from app.ledger.facts import CoveredOrganizations
from app.ledger.giving import NetCash
from app.ledger.pledges import pledge_schedules
from app.ledger.profile import giving_summary
from app.payments import recurring
from app.web.access import get_or_404, role_required
from app.web.changes import pending_message, rescreen_message
from app.web.contacts import KIND_LABELS as INTERACTION_LABELS
from app.web.contacts import interaction_form, task_form
from app.web.formtools import (
    INVALID,
    ButtonForm,
    attempt,
    blank_to_none,
    ordered,
    page_of,
    sort_from_args,
)
from app.web.organizations import coverage_label, organization_choices
from app.web.pledges import schedule_totals
from app.web.recurring import STATUS_LABELS as RECURRING_LABELS
from app.web.relationships import KIND_LABELS as RELATIONSHIP_LABELS
from app.web.relationships import relationship_form
from app.web.segments import (
    criteria_from_args,
    filter_choices,
    segment_arg,
    segment_choices,
    segment_donor_ids,
)
from models import (
    Acknowledgement,
    Affiliation,
    Attribution,
    Decision,
    Donor,
    Gift,
    Organization,
    Pledge,
    User,
)
from models.parties import AFFILIATION_KINDS
from models.schemas import AffiliationCreate, DonorCreate, DonorUpdate, TagSet
from models.segments import TAG_PATTERN
from policies.rules import senior_words

bp = Blueprint("donors", __name__, url_prefix="/staff/donors")

CATEGORY_LABELS = {"individual": "Individual", "foundation": "Foundation", "company": "Company",
                   "daf_sponsor": "Donor-advised fund sponsor", "other": "Other"}
KIND_LABELS = {"employee": "Employee", "contractor": "Contractor", "board_member": "Board member",
               "advisor": "Advisor", "founder": "Founder"}
BASIS_LABELS = {"donor": "Donor", "explicit": "Split by fraction", "daf_advisor": "DAF advisor",
                "employer_match": "Employer match"}


# --- forms ----------------------------------------------------------------------------------

class DonorForm(FlaskForm):
    type = SelectField("Type", choices={"person": "Person", "organization": "Organisation"})
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[Optional(), Length(max=320),
                                             Email(check_deliverability=False)])
    organization_id = SelectField(
        "Organisation this donor is", choices={}, default="",
        description="Only for an organisation donor, so a lab's own money is recognised. "
                    "A person's employer is an affiliation, added on their page.")
    category = SelectField(
        "Category", default="",
        choices={"": "Automatic (individual for a person, other for an organisation)",
                 **CATEGORY_LABELS})
    anonymous = BooleanField(
        "Mark anonymous for public listings",
        description="Hidden from anything published; still fully known here.")
    public_name_consent = BooleanField(
        "Agreed to be named on the public funding page",
        description="Only with the donor's yes; donors are private otherwise.")
    # Compared when matching identities (app.ledger.identity), as the API and CSV take them.
    phone = StringField("Phone", validators=[Optional(), Length(max=40)],
                        description="Where known: compared when matching a new record, a roster "
                                    "or an import to this donor.")
    postal_address = TextAreaField("Postal address", validators=[Optional(), Length(max=500)])


class DonorEditForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[Optional(), Length(max=320),
                                             Email(check_deliverability=False)])
    category = SelectField("Category", choices=dict(CATEGORY_LABELS))
    anonymous = BooleanField(
        "Mark anonymous for public listings",
        description="Hidden from anything published; still fully known here.")
    public_name_consent = BooleanField(
        "Agreed to be named on the public funding page",
        description="Only with the donor's yes; donors are private otherwise.")
    # Compared when matching identities (app.ledger.identity), as the API and CSV take them.
    phone = StringField("Phone", validators=[Optional(), Length(max=40)],
                        description="Where known: compared when matching a new record, a roster "
                                    "or an import to this donor.")
    postal_address = TextAreaField("Postal address", validators=[Optional(), Length(max=500)])


class AffiliationForm(FlaskForm):
    organization_id = SelectField("Organisation", choices={}, validators=[DataRequired()])
    kind = SelectField("Kind", choices={k: KIND_LABELS[k] for k in AFFILIATION_KINDS})
    title = StringField("Title", validators=[Optional(), Length(max=200)])
    senior_decision_maker = BooleanField(
        "Senior decision-maker",
        description="Someone who makes senior decisions at the organisation. Gifts from a "
                    "covered lab's senior decision-makers are rejected.")
    start_date = DateField("From", validators=[InputRequired()])
    end_date = DateField("Until (last day)", validators=[Optional()],
                         description="Leave empty while the affiliation lasts.")


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GivingTotals:
    #: Accepted cash gifts, net of refunds, in the reporting currency.
    accepted_minor: int = 0
    last_gift_on: date | None = None


def giving_totals(session: Session, donor_ids: list[int], currency: str) -> dict[int, GivingTotals]:
    """Lifetime totals for many donors in one aggregate query."""
    if not donor_ids:
        return {}
    cash = NetCash(currency, Gift.donor_id.in_(donor_ids))
    rows = session.execute(
        cash.join(select(
            Gift.donor_id,
            func.sum(case((cash.counted, cash.net), else_=0)),
            func.max(case((Gift.status != "failed", Gift.received_on))),
        ).select_from(Gift))
        .where(*cash.scope)
        .group_by(Gift.donor_id)
    ).all()
    return {donor_id: GivingTotals(int(total or 0), last) for donor_id, total, last in rows}


#: The donor list's sortable columns (?sort=KEY&dir=asc|desc).
DONOR_SORT = {"name": func.lower(Donor.name), "id": Donor.id, "type": Donor.type}


def _current_affiliations(session: Session, donor_ids: list[int], today: date) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    if not donor_ids:
        return result
    rows = session.execute(
        select(Affiliation.donor_id, Organization.name)
        .join(Organization, Organization.id == Affiliation.organization_id)
        .where(Affiliation.donor_id.in_(donor_ids), Affiliation.start_date <= today,
               or_(Affiliation.end_date.is_(None), Affiliation.end_date >= today))
        .order_by(Organization.name)
    ).all()
    for donor_id, name in rows:
        result.setdefault(donor_id, []).append(name)
    return result


def list_filter(session: Session) -> tuple[list, dict]:
    """The donors list's filter from the query string: a saved segment (?segment=ID) and/or
    criteria of its own (the names of SegmentCriteria), as WHERE clauses on Donor; and what
    the page shows about it. The CSV export of the list calls this too."""
    currency = state().reporting_currency
    criteria, field_errors = criteria_from_args()
    messages: list[str] = []
    segment = segment_arg(session, messages)
    conditions = segments.donor_conditions(session, criteria, currency, live_only=False)
    if segment is not None:
        conditions.append(Donor.id.in_(segment_donor_ids(session, segment)))
    shown = {"criteria": criteria, "field_errors": field_errors, "messages": messages,
             "segment": segment,
             "filtered": bool(criteria.given()) or segment is not None,
             "audit": {**criteria.given(), **({"segment": segment.id} if segment else {})}}
    return conditions, shown


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    st = state()
    conditions, shown = list_filter(session)
    sort = sort_from_args(DONOR_SORT, "name", descending=False, desc_first=("id",))
    page, donors = page_of(session, select(Donor).where(*conditions)
                           .order_by(*ordered(sort, DONOR_SORT, Donor.id)))
    ids = [d.id for d in donors]
    org_names = dict(session.execute(
        select(Organization.id, Organization.name)
        .where(Organization.id.in_({d.organization_id for d in donors if d.organization_id}))
    ).all())
    return render_template(
        "donors/index.html", donors=donors, page=page, q=shown["criteria"].q or "",
        totals=giving_totals(session, ids, st.reporting_currency),
        affiliations=_current_affiliations(session, ids, st.today()), org_names=org_names,
        currency=st.reporting_currency, category_labels=CATEGORY_LABELS, sort=sort,
        tags=segments.tags_of(session, ids), choices=filter_choices(session),
        segment_list=segment_choices(session), **shown,
    )


@bp.get("/<int:donor_id>")
@role_required(READ)
def detail(donor_id: int):
    session = get_session()
    st = state()
    donor = get_or_404(Donor, donor_id)
    today = st.today()
    covered = CoveredOrganizations(session)

    gifts = session.execute(
        select(Gift).where(Gift.donor_id == donor_id)
        .order_by(Gift.received_on.desc(), Gift.id.desc())
    ).scalars().all()
    affiliations = session.execute(
        select(Affiliation, Organization)
        .join(Organization, Organization.id == Affiliation.organization_id)
        .where(Affiliation.donor_id == donor_id)
        .order_by(Affiliation.start_date.desc(), Affiliation.id.desc())
    ).all()
    attributions = session.execute(
        select(Attribution, Gift, Donor)
        .join(Gift, Gift.id == Attribution.gift_id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(Attribution.donor_id == donor_id, Gift.donor_id != donor_id)
        .order_by(Gift.received_on.desc(), Gift.id.desc())
    ).all()
    attributed_ids = select(Attribution.gift_id).where(Attribution.donor_id == donor_id)
    decisions = session.execute(
        select(Decision, Gift)
        .join(Gift, Gift.id == Decision.gift_id)
        .where(or_(Gift.donor_id == donor_id, Gift.id.in_(attributed_ids)))
        .order_by(Decision.created_at.desc(), Decision.id.desc())
    ).all()
    pledges = session.execute(
        select(Pledge).where(Pledge.donor_id == donor_id).order_by(Pledge.pledged_on.desc())
    ).scalars().all()
    schedules = pledge_schedules(session, [p.id for p in pledges], today)
    pledge_totals = {p.id: schedule_totals(schedules[p.id]) for p in pledges}

    policy = st.policy_for(session)
    # Affiliations whose title reads senior at a covered lab and waits for a reviewer's
    # answer (rule possible_senior_decision_maker): title id -> the words that matched.
    title_questions = {
        a.id: words for a, _o in affiliations
        if not a.senior_decision_maker and a.title_cleared != a.title
        and covered.covered(a.organization_id)
        and (words := senior_words(policy, a.title))
    }
    refusals = declarations.refusals_of_donor(session, donor) if donor.type == "person" else []
    return render_template(
        "donors/detail.html", donor=donor, gifts=gifts, today=today,
        tags=segments.tags_of(session, [donor_id]).get(donor_id, []),
        title_questions=title_questions, refusals=refusals,
        refusal_labs={o.id: o.name for o in session.execute(select(Organization).where(
            Organization.id.in_({r.declared_lab_id for r in refusals}))).scalars()}
        if refusals else {},
        merged_into=session.get(Donor, survivor) if (survivor := parties.merged_into(
            session, donor_id)) else None,
        affiliations=[(a, o, coverage_label(covered, o)) for a, o in affiliations],
        attributions=attributions, decisions=decisions, pledges=pledges, pledge_totals=pledge_totals,
        giving=giving_summary(session, donor_id, st.reporting_currency, today),
        currency=st.reporting_currency,
        timeline=contacts.timeline(session, donor_id, limit=20),
        tasks=contacts.tasks_of(session, donor_id=donor_id, status="open"),
        staff_emails=dict(session.execute(select(User.id, User.email)).all()),
        interaction_form=interaction_form() if current_user.can("contacts.write") else None,
        task_form=task_form() if current_user.can("contacts.write") else None,
        interaction_labels=INTERACTION_LABELS,
        letters=session.execute(
            select(Acknowledgement).where(Acknowledgement.donor_id == donor_id)
            .order_by(Acknowledgement.sent_at.desc(), Acknowledgement.id.desc()).limit(50)
        ).scalars().all(),
        monthly=recurring.rows_for(session, session.execute(
            recurring.recurring_query(donor_id=donor_id)).scalars().all(), st.reporting_currency),
        recurring_labels=RECURRING_LABELS,
        organization=session.get(Organization, donor.organization_id)
        if donor.organization_id else None,
        category_labels=CATEGORY_LABELS, kind_labels=KIND_LABELS, basis_labels=BASIS_LABELS,
        relationships=relationships.relationships_of(session, donor_id)
        if donor.type == "person" else [],
        relationship_form=relationship_form()
        if donor.type == "person" and current_user.can("affiliations.write") else None,
        relationship_labels=RELATIONSHIP_LABELS,
    )


def contact_input(form) -> dict[str, str | None]:
    """The phone and postal address typed, blank as None (the API's and the CSV's fields)."""
    return {"phone": blank_to_none(form.phone.data),
            "postal_address": blank_to_none(form.postal_address.data)}


# --- writing ----------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@role_required("donors.write")
def create():
    session = get_session()
    form = DonorForm()
    form.organization_id.choices = {"": "— none —", **organization_choices(session)}
    if request.method == "GET":
        form.type.data = request.args.get("type", "person")
        form.organization_id.data = request.args.get("organization_id", "")
    same = None
    if form.validate_on_submit():
        try:
            ok, donor = attempt(form, lambda: parties.create_donor(session, DonorCreate(
                type=form.type.data,
                name=form.name.data,
                email=blank_to_none(form.email.data),
                organization_id=int(form.organization_id.data) if form.organization_id.data
                else None,
                category=form.category.data or None,
                anonymous=form.anonymous.data,
                public_name_consent=form.public_name_consent.data,
                **contact_input(form),
            ), g.actor), names={"body": "category"})
        except ProbablySamePerson as error:
            # "This is probably X": the record to look at, and (for a reviewer) the way to
            # record a different person anyway (templates/donors/form.html).
            ok, donor, same = False, None, {"id": error.existing_id, "name": error.existing_name}
            form.form_errors = [*form.form_errors, answer_for(error).message]
        if ok:
            flash(f"Donor {donor.name} created.", "success")
            return redirect(url_for("donors.detail", donor_id=donor.id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/form.html", form=form, donor=None, same=same), status


@bp.route("/<int:donor_id>/edit", methods=["GET", "POST"])
@role_required("donors.write")
def edit(donor_id: int):
    session = get_session()
    donor = get_or_404(Donor, donor_id)
    form = DonorEditForm(obj=donor)
    same = None
    if form.validate_on_submit():
        try:
            ok, _ = attempt(form, lambda: parties.update_donor(session, donor_id, DonorUpdate(
                name=form.name.data,
                email=blank_to_none(form.email.data),
                category=form.category.data,
                anonymous=form.anonymous.data,
                public_name_consent=form.public_name_consent.data,
                **contact_input(form),
            ), g.actor))
        except ProbablySamePerson as error:
            ok, same = False, {"id": error.existing_id, "name": error.existing_name}
            form.form_errors = [*form.form_errors, answer_for(error).message]
        if ok:
            flash("Donor saved.", "success")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/form.html", form=form, donor=donor, same=same), status


class TagsForm(FlaskForm):
    tags = StringField("Tags", validators=[Optional(), Length(max=1000)],
                       description="Comma-separated words for finding donors again, e.g. "
                                   "“major-donor, gala-2026” (lower-case letters, digits, "
                                   "hyphens). Donor segments can select by tag.")

    def words(self) -> list[str]:
        return [w.strip().lower() for w in (self.tags.data or "").split(",") if w.strip()]

    def validate_tags(self, field):
        for word in self.words():
            if not re.fullmatch(TAG_PATTERN, word):
                raise ValidationError(
                    f"“{word[:40]}” is not a tag: use lower-case letters, digits and hyphens "
                    "(up to 40, starting with a letter or digit), commas between tags.")
        if len(set(self.words())) > 50:
            raise ValidationError("At most 50 tags.")


@bp.route("/<int:donor_id>/tags", methods=["GET", "POST"])
@role_required("donors.write")
def edit_tags(donor_id: int):
    session = get_session()
    donor = get_or_404(Donor, donor_id)
    current = segments.tags_of(session, [donor_id]).get(donor_id, [])
    form = TagsForm(data={"tags": ", ".join(current)})
    if form.validate_on_submit():
        ok, _ = attempt(form, lambda: segments.set_tags(
            session, donor_id, TagSet(tags=form.words()).tags, g.actor), names={"body": "tags"})
        if ok:
            flash("Tags saved.", "success")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/tags.html", form=form, donor=donor), status


def _affiliation_input(form: AffiliationForm) -> AffiliationCreate:
    return AffiliationCreate(
        organization_id=int(form.organization_id.data),
        kind=form.kind.data,
        title=blank_to_none(form.title.data),
        senior_decision_maker=form.senior_decision_maker.data,
        start_date=form.start_date.data,
        end_date=form.end_date.data,
    )


@bp.route("/<int:donor_id>/affiliations/new", methods=["GET", "POST"])
@role_required("affiliations.write")
def add_affiliation(donor_id: int):
    session = get_session()
    donor = get_or_404(Donor, donor_id)
    if donor.type != "person":
        abort(404)
    form = AffiliationForm()
    form.organization_id.choices = organization_choices(session)
    if form.validate_on_submit():
        policy = state().policy_for(session)
        ok, result = attempt(form, lambda: parties.add_affiliation(
            session, donor_id, _affiliation_input(form), g.actor, policy))
        if ok:
            _, rescreened = result
            flash(f"Affiliation added. {rescreen_message(len(rescreened))}",
                  "warning" if rescreened else "success")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/affiliation_form.html", form=form, donor=donor,
                           affiliation=None), status


def _affiliation_of(donor_id: int, affiliation_id: int) -> tuple[Donor, Affiliation]:
    """The affiliation, only through the donor it belongs to."""
    donor = get_or_404(Donor, donor_id)
    affiliation = get_or_404(Affiliation, affiliation_id)
    if affiliation.donor_id != donor.id:
        abort(404)
    return donor, affiliation


@bp.route("/<int:donor_id>/affiliations/<int:affiliation_id>/edit", methods=["GET", "POST"])
@role_required("affiliations.write")
def edit_affiliation(donor_id: int, affiliation_id: int):
    session = get_session()
    donor, affiliation = _affiliation_of(donor_id, affiliation_id)
    form = AffiliationForm(obj=affiliation)
    form.organization_id.choices = organization_choices(session)
    if request.method == "GET":
        form.organization_id.data = str(affiliation.organization_id)
    if form.validate_on_submit():
        policy = state().policy_for(session)
        try:
            ok, result = attempt(form, lambda: changes.propose_affiliation_change(
                session, affiliation_id, _affiliation_input(form), g.actor, policy))
        except NotFound:
            abort(404)
        if ok:
            rescreened = result.rescreened
            flash(f"Affiliation saved. {rescreen_message(len(rescreened))}",
                  "warning" if rescreened else "success")
            if result.change is not None:
                flash(pending_message(result.change), "warning")
            return redirect(url_for("donors.detail", donor_id=donor_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("donors/affiliation_form.html", form=form, donor=donor,
                           affiliation=affiliation, remove_form=ButtonForm()), status



@bp.post("/<int:donor_id>/affiliations/<int:affiliation_id>/remove")
@role_required("affiliations.write")
def remove_affiliation(donor_id: int, affiliation_id: int):
    """Delete an affiliation recorded in error: at once at an organisation that is not
    covered; at a covered one it waits for a second person (app.ledger.changes)."""
    session = get_session()
    _affiliation_of(donor_id, affiliation_id)
    if not ButtonForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("donors.edit_affiliation", donor_id=donor_id,
                                affiliation_id=affiliation_id), 303)
    result = changes.propose_affiliation_removal(session, affiliation_id, g.actor,
                                                 state().policy_for(session))
    if result.change is not None:
        flash(pending_message(result.change), "warning")
    else:
        flash(f"Affiliation removed. {rescreen_message(len(result.rescreened))}", "success")
    return redirect(url_for("donors.detail", donor_id=donor_id), 303)

