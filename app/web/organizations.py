"""Organisation screens: the register of labs, their affiliates, and who is linked to them.

Editing whether an organisation is covered (its covered_lab flag, or its parent) changes
policy facts. Applying such a change (app.ledger.parties) re-screens the past gifts that
rested on the old answer and holds them for a reviewer; this page says how many. Edits go
through app.ledger.changes: a part that weakens enforcement (uncovering, detaching from a
covered parent, dropping a covered organisation's name) waits for a second person.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlmodel import Session
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import NotFound
from app.extensions import state
from app.ledger import changes, parties
from app.ledger.facts import CoveredOrganizations
from app.ledger.search import OrganizationNames
from app.web.access import get_or_404, role_required
from app.web.changes import pending_message
from app.web.formtools import INVALID, attempt, choice_arg, ordered, page_of, sort_from_args
from models import Affiliation, Donor, InKindArrangement, Organization
from models.schemas import OrganizationCreate

bp = Blueprint("organizations", __name__, url_prefix="/staff/organizations")


def coverage_label(covered: CoveredOrganizations, org: Organization) -> str | None:
    """'Covered lab', 'Affiliate of a covered lab', or None: the words, not a colour."""
    if org.covered_lab:
        return "Covered lab"
    if covered.covered(org.id):
        return "Affiliate of a covered lab"
    return None


def organization_choices(session: Session, exclude: int | None = None) -> dict[str, str]:
    """Every organisation for a <select> (value -> label), covered ones marked in the label."""
    orgs = session.execute(select(Organization).order_by(func.lower(Organization.name))).scalars()
    covered = CoveredOrganizations(session)
    return {
        str(o.id): f"{o.name} (covered)" if covered.covered(o.id) else o.name
        for o in orgs if o.id != exclude
    }


class OrganizationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    covered_lab = BooleanField(
        "Frontier AI lab (covered by the independence policy)",
        description="Its affiliates (organisations with this one as parent) are covered too.")
    aliases = StringField(
        "Other names", validators=[Optional(), Length(max=2000)],
        description="Comma-separated, e.g. “DeepMind, GDM”. Search finds these too.")
    parent_id = SelectField(
        "Parent organisation", choices={}, default="",
        description="For a subsidiary or a lab's foundation: the organisation it belongs to.")

    def to_input(self) -> OrganizationCreate:
        aliases = [a.strip() for a in (self.aliases.data or "").split(",") if a.strip()]
        return OrganizationCreate(
            name=self.name.data, covered_lab=self.covered_lab.data, aliases=aliases,
            parent_id=int(self.parent_id.data) if self.parent_id.data else None,
        )


#: The organisation list's sortable columns ("covered": covered labs themselves first).
ORG_SORT = {"name": func.lower(Organization.name), "covered": Organization.covered_lab,
            "id": Organization.id}


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    term = request.args.get("q", "").strip()[:200]
    errors: list[str] = []
    covered_only = choice_arg("covered", "Covered filter", ("yes", "no"), errors)
    query = select(Organization)
    if term:
        query = query.where(Organization.id.in_(OrganizationNames(session).containing(term)))
    if covered_only:
        query = query.where(Organization.covered_lab.is_(covered_only == "yes"))
    sort = sort_from_args(ORG_SORT, "name", descending=False, desc_first=("covered", "id"))
    page, orgs = page_of(session, query.order_by(*ordered(sort, ORG_SORT, Organization.id)),
                         per_page=50)
    ids = [o.id for o in orgs]
    children: dict[int, list[Organization]] = {}
    for child in session.execute(
        select(Organization).where(Organization.parent_id.in_(ids))
        .order_by(func.lower(Organization.name))
    ).scalars():
        children.setdefault(child.parent_id, []).append(child)
    parents = {o.id: o for o in session.execute(
        select(Organization).where(Organization.id.in_({o.parent_id for o in orgs if o.parent_id}))
    ).scalars()}
    covered = CoveredOrganizations(session)
    return render_template(
        "organizations/index.html", orgs=orgs, page=page, q=term, children=children,
        sort=sort, covered_only=covered_only, errors=errors,
        parents=parents, coverage={o.id: coverage_label(covered, o) for o in orgs},
    )


@bp.get("/<int:org_id>")
@role_required(READ)
def detail(org_id: int):
    session = get_session()
    st = state()
    org = get_or_404(Organization, org_id)
    today = st.today()
    cooling_off = st.policy_for(session).cooling_off_days
    covered = CoveredOrganizations(session)
    is_covered = covered.covered(org.id)

    people = []
    for aff, donor in session.execute(
        select(Affiliation, Donor).join(Donor, Donor.id == Affiliation.donor_id)
        .where(Affiliation.organization_id == org_id)
        .order_by(Affiliation.start_date.desc(), Affiliation.id.desc())
    ):
        if aff.start_date > today:
            status = "Starts later"
        elif aff.end_date is None or aff.end_date >= today:
            status = "Current"
        elif is_covered and aff.end_date + timedelta(days=cooling_off) > today:
            # Mirrors the policy: an ended affiliation still counts during the cooling-off.
            last = aff.end_date + timedelta(days=cooling_off - 1)
            status = f"Ended; counts as lab-linked until {last.isoformat()}"
        else:
            status = "Ended"
        people.append((aff, donor, status))
    people.sort(key=lambda row: row[2] != "Current")  # current first, each group by date

    affiliates = session.execute(
        select(Organization).where(Organization.parent_id == org_id)
        .order_by(func.lower(Organization.name))
    ).scalars().all()
    in_kind = session.execute(
        select(InKindArrangement).where(InKindArrangement.organization_id == org_id)
        .order_by(InKindArrangement.start_date.desc(), InKindArrangement.id.desc())
    ).scalars().all()
    donors = session.execute(
        select(Donor).where(Donor.organization_id == org_id).order_by(func.lower(Donor.name))
    ).scalars().all()
    return render_template(
        "organizations/detail.html", org=org, coverage=coverage_label(covered, org),
        parent=session.get(Organization, org.parent_id) if org.parent_id else None,
        affiliates=[(a, coverage_label(covered, a)) for a in affiliates],
        people=people, in_kind=in_kind, donors=donors,
        pending_changes=[c for c in changes.changes_in_state(
            session, "pending", policy=state().policy_for(session))
            if c.kind == "organization" and c.target_id == org_id],
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required("organizations.write")
def create():
    session = get_session()
    form = OrganizationForm()
    form.parent_id.choices = {"": "— none —", **organization_choices(session)}
    if request.method == "GET":
        form.parent_id.data = request.args.get("parent_id", "")
    if form.validate_on_submit():
        ok, org = attempt(form, lambda: parties.create_organization(session, form.to_input(),
                                                                     g.actor))
        if ok:
            flash(f"Organisation {org.name} created.", "success")
            return redirect(url_for("organizations.detail", org_id=org.id))
    status = INVALID if request.method == "POST" else 200
    return render_template("organizations/form.html", form=form, org=None), status


@bp.route("/<int:org_id>/edit", methods=["GET", "POST"])
@role_required("organizations.write")
def edit(org_id: int):
    session = get_session()
    org = get_or_404(Organization, org_id)
    form = OrganizationForm(obj=org)
    form.parent_id.choices = {"": "— none —", **organization_choices(session, exclude=org_id)}
    if request.method == "GET":
        form.aliases.data = ", ".join(org.aliases or [])
        form.parent_id.data = str(org.parent_id) if org.parent_id else ""
    if form.validate_on_submit():
        policy = state().policy_for(session)
        try:
            ok, result = attempt(form, lambda: changes.propose_organization_change(
                session, org_id, form.to_input(), g.actor, policy))
        except NotFound:
            abort(404)
        if ok:
            rescreened = result.rescreened
            if rescreened:
                flash(f"Organisation saved. Its covered-lab status changed: {len(rescreened)} "
                      "past gift(s) were re-screened and put on hold for a reviewer.", "warning")
            elif result.change is None:
                flash("Organisation saved. No past gifts needed re-screening.", "success")
            if result.change is not None:
                flash(pending_message(result.change), "warning")
            return redirect(url_for("organizations.detail", org_id=org_id))
    status = INVALID if request.method == "POST" else 200
    return render_template("organizations/form.html", form=form, org=org), status
