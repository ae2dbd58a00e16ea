"""Pledge screens: what is promised, what is paid, what is due and what is overdue.

A pledge is created with an instalment schedule built here from "N equal instalments
every month/quarter/year"; the amounts are exact minor units with the last instalment
absorbing the remainder (app.ledger.pledges.equal_instalments). Payments are gifts
with pledge_id, recorded through the gift screens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import NotAllowed, ValidationFailed
from app.extensions import state
from app.ledger import pledges as ledger_pledges
from app.ledger.pledges import FREQUENCY_MONTHS, InstalmentState, equal_instalments
from app.ledger.search import donors_matching
from app.web.access import get_or_404, role_required
from app.web.formtools import (
    INVALID,
    AmountField,
    AmountRange,
    amount_between,
    amount_range_arg,
    attempt,
    blank_to_none,
    choice_arg,
    date_arg,
    ordered,
    page_of,
    sort_from_args,
)
from models import Donor, Gift, Pledge
from models.money import MoneyError, format_amount, normalise_currency, parse_amount
from models.schemas import InstalmentIn, PledgeCancel, PledgeCreate, PledgeSchedule

bp = Blueprint("pledges", __name__, url_prefix="/staff/pledges")

STATE_LABELS = {"paid": "Paid", "part_paid": "Part paid", "due": "Due", "overdue": "Overdue"}


@dataclass(frozen=True)
class ScheduleTotals:
    paid_minor: int = 0
    #: Still to pay on instalments not yet past their due date.
    due_minor: int = 0
    #: Still to pay on instalments past their due date.
    overdue_minor: int = 0

    def __add__(self, other: ScheduleTotals) -> ScheduleTotals:
        return ScheduleTotals(self.paid_minor + other.paid_minor, self.due_minor + other.due_minor,
                              self.overdue_minor + other.overdue_minor)


def schedule_totals(schedule: list[InstalmentState]) -> ScheduleTotals:
    paid = sum(s.paid_minor for s in schedule)
    overdue = sum(s.amount_minor - s.paid_minor for s in schedule if s.state == "overdue")
    due = sum(s.amount_minor - s.paid_minor for s in schedule if s.state in ("due", "part_paid"))
    return ScheduleTotals(paid, due, overdue)


def _as_of() -> date:
    """?as_of=YYYY-MM-DD shows the schedule as it stood (or will stand) on that day."""
    raw = request.args.get("as_of", "")
    try:
        return date.fromisoformat(raw) if raw else state().today()
    except ValueError:
        return state().today()


class PledgeForm(FlaskForm):
    donor_id = IntegerField("Donor number",
                            validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1)],
                            description="The number on the donor's page (open the pledge form "
                                        "from there to fill it in).")
    amount = AmountField("Amount pledged", validators=[DataRequired(), Length(max=40)],
                         description="In major units, e.g. 16,000,000.00")
    currency = StringField("Currency", validators=[DataRequired(), Length(min=3, max=3)],
                           description="ISO 4217 code, e.g. USD")
    pledged_on = DateField("Pledged on", validators=[InputRequired()])
    description = TextAreaField("Description", validators=[Optional(), Length(max=500)])
    instalment_count = IntegerField("Number of instalments", default=1,
                                    validators=[InputRequired(), NumberRange(min=1, max=360)])
    frequency = SelectField("One every",
                            choices={"monthly": "month", "quarterly": "quarter", "yearly": "year"})
    first_due_on = DateField("First instalment due", validators=[Optional()],
                             description="Leave empty for the pledge date.")


class CancelForm(FlaskForm):
    reason = TextAreaField("Why is it cancelled?", validators=[DataRequired(), Length(min=3, max=500)],
                           description="e.g. the donor withdrew the pledge. Kept on the pledge.")


class RescheduleForm(FlaskForm):
    instalment_count = IntegerField("Number of instalments", default=1,
                                    validators=[InputRequired(), NumberRange(min=1, max=360)])
    frequency = SelectField("One every",
                            choices={"monthly": "month", "quarterly": "quarter", "yearly": "year"})
    first_due_on = DateField("First new instalment due", validators=[InputRequired()])


def rest_of_schedule(pledge: Pledge, schedule: list[InstalmentState],
                     form: RescheduleForm) -> PledgeSchedule:
    """The instalments paid in full stay as they are; what is left to pay is spread over the
    form's equal instalments (exact minor units, the last absorbing the remainder)."""
    paid = [s for s in schedule if s.state == "paid"]
    rest = pledge.amount_minor - sum(s.amount_minor for s in paid)
    if rest <= 0:
        raise ValidationFailed({"instalment_count": ["nothing is left to pay on this pledge"]})
    spread = equal_instalments(rest, form.instalment_count.data, form.first_due_on.data,
                               FREQUENCY_MONTHS[form.frequency.data])
    return PledgeSchedule(instalments=[
        InstalmentIn(due_on=due, amount=format_amount(minor, pledge.currency))
        for due, minor in [*((s.due_on, s.amount_minor) for s in paid), *spread]])


@dataclass(frozen=True)
class Plan:
    data: PledgeCreate
    schedule: list[tuple[date, int]]


def _plan(form: PledgeForm) -> Plan:
    try:
        currency = normalise_currency(form.currency.data)
    except MoneyError as error:
        raise ValidationFailed({"currency": [str(error)]}) from None
    try:
        total = parse_amount(form.amount.data, currency)
    except MoneyError as error:
        raise ValidationFailed({"amount": [str(error)]}) from None
    schedule = equal_instalments(total, form.instalment_count.data,
                                 form.first_due_on.data or form.pledged_on.data,
                                 FREQUENCY_MONTHS[form.frequency.data])
    data = PledgeCreate(
        donor_id=form.donor_id.data, amount=form.amount.data, currency=currency,
        pledged_on=form.pledged_on.data, description=blank_to_none(form.description.data),
        instalments=[InstalmentIn(due_on=due, amount=format_amount(minor, currency))
                     for due, minor in schedule],
    )
    return Plan(data, schedule)


#: The pledge list's sortable columns. Amounts sort by currency first: 100 yen is not 100
#: dollars, and pledges are never converted.
PLEDGE_SORT = {"pledged": Pledge.pledged_on, "id": Pledge.id, "donor": func.lower(Donor.name),
               "amount": Pledge.amount_minor, "state": Pledge.state}
PLEDGE_STATES = ("active", "fulfilled", "cancelled")


@dataclass(frozen=True)
class PledgeFilters:
    state: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    amounts: AmountRange = AmountRange()
    q: str = ""
    errors: tuple[str, ...] = ()

    def args(self) -> dict:
        values = {"state": self.state, "q": self.q or None,
                  "from": self.date_from.isoformat() if self.date_from else None,
                  "to": self.date_to.isoformat() if self.date_to else None,
                  **self.amounts.args()}
        return {k: v for k, v in values.items() if v}

    def conditions(self, currencies: list[str]) -> list:
        conditions = []
        if self.state:
            conditions.append(Pledge.state == self.state)
        if self.date_from:
            conditions.append(Pledge.pledged_on >= self.date_from)
        if self.date_to:
            conditions.append(Pledge.pledged_on <= self.date_to)
        if self.q:
            conditions.append(donors_matching(self.q, by_id=True))
        return conditions + amount_between(Pledge.amount_minor, Pledge.currency, self.amounts,
                                           currencies)


def _pledge_filters(currencies: list[str]) -> PledgeFilters:
    errors: list[str] = []
    return PledgeFilters(
        state=choice_arg("state", "State", PLEDGE_STATES, errors),
        date_from=date_arg("from", "Pledged from", errors),
        date_to=date_arg("to", "Pledged to", errors),
        amounts=amount_range_arg(currencies, errors),
        q=request.args.get("q", "").strip()[:200], errors=tuple(errors))


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    as_of = _as_of()
    currencies = list(session.execute(select(Pledge.currency).distinct()).scalars())
    filters = _pledge_filters(currencies)
    sort = sort_from_args(PLEDGE_SORT, "pledged", descending=True,
                          desc_first=("pledged", "id", "amount"))
    query = (select(Pledge).join(Donor, Donor.id == Pledge.donor_id)
             .where(*filters.conditions(currencies)))
    if sort.key == "amount":
        direction = "desc" if sort.descending else "asc"
        order = [getattr(Pledge.currency, direction)(), getattr(Pledge.amount_minor, direction)(),
                 getattr(Pledge.id, direction)()]
    else:
        order = ordered(sort, PLEDGE_SORT, Pledge.id)
    page, rows = page_of(session, query.order_by(*order))
    schedules = ledger_pledges.pledge_schedules(session, [p.id for p in rows], as_of)
    donors = {d.id: d for d in session.execute(
        select(Donor).where(Donor.id.in_({p.donor_id for p in rows}))).scalars()}

    # Totals over every pledge that is not cancelled, per currency (never mixed).
    everything = session.execute(select(Pledge).where(Pledge.state != "cancelled")).scalars().all()
    all_schedules = ledger_pledges.pledge_schedules(session, [p.id for p in everything], as_of)
    by_currency: dict[str, tuple[int, ScheduleTotals]] = {}
    for pledge in everything:
        pledged, totals = by_currency.get(pledge.currency, (0, ScheduleTotals()))
        by_currency[pledge.currency] = (pledged + pledge.amount_minor,
                                        totals + schedule_totals(all_schedules[pledge.id]))
    return render_template(
        "pledges/index.html", pledges=rows, page=page, donors=donors, as_of=as_of,
        filters=filters, sort=sort, states=PLEDGE_STATES,
        totals={p.id: schedule_totals(schedules[p.id]) for p in rows},
        by_currency=sorted(by_currency.items()), today=state().today(),
    )


def _detail(pledge: Pledge, *, cancel_form: CancelForm | None = None,
            reschedule_form: RescheduleForm | None = None, status: int = 200):
    session = get_session()
    as_of = _as_of()
    schedule = ledger_pledges.pledge_schedule(session, pledge, as_of)
    payments = session.execute(
        select(Gift).where(Gift.pledge_id == pledge.id).order_by(Gift.received_on, Gift.id)
    ).scalars().all()
    if reschedule_form is None:
        reschedule_form = RescheduleForm(formdata=None)
        reschedule_form.first_due_on.data = state().today()
    return render_template(
        "pledges/detail.html", pledge=pledge, donor=session.get(Donor, pledge.donor_id),
        schedule=schedule, totals=schedule_totals(schedule), payments=payments, as_of=as_of,
        today=state().today(), state_labels=STATE_LABELS,
        overpaid_minor=max(0, ledger_pledges.paid_minor(session, pledge.id) - pledge.amount_minor),
        cancel_form=cancel_form or CancelForm(formdata=None), reschedule_form=reschedule_form,
    ), status


@bp.get("/<int:pledge_id>")
@role_required(READ)
def detail(pledge_id: int):
    return _detail(get_or_404(Pledge, pledge_id))


def _refused(form: FlaskForm, error: NotAllowed) -> None:
    form.form_errors = [*form.form_errors, str(error)]


@bp.post("/<int:pledge_id>/cancel")
@role_required("pledges.write")
def cancel(pledge_id: int):
    pledge = get_or_404(Pledge, pledge_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            ok, _ = attempt(form, lambda: ledger_pledges.cancel_pledge(
                get_session(), pledge_id, PledgeCancel(reason=form.reason.data), g.actor))
        except NotAllowed as error:
            ok = False
            _refused(form, error)
        if ok:
            flash("Pledge cancelled: what is left of it is no longer due.", "success")
            return redirect(url_for("pledges.detail", pledge_id=pledge_id))
    return _detail(pledge, cancel_form=form, status=INVALID)


@bp.post("/<int:pledge_id>/reschedule")
@role_required("pledges.write")
def reschedule(pledge_id: int):
    pledge = get_or_404(Pledge, pledge_id)
    form = RescheduleForm()
    if form.validate_on_submit():
        session = get_session()
        schedule = ledger_pledges.pledge_schedule(session, pledge, state().today())
        try:
            ok, _ = attempt(form, lambda: ledger_pledges.reschedule_pledge(
                session, pledge_id, rest_of_schedule(pledge, schedule, form), g.actor))
        except NotAllowed as error:
            ok = False
            _refused(form, error)
        if ok:
            flash("Pledge rescheduled.", "success")
            return redirect(url_for("pledges.detail", pledge_id=pledge_id))
    return _detail(pledge, reschedule_form=form, status=INVALID)


@bp.route("/new", methods=["GET", "POST"])
@role_required("pledges.write")
def create():
    session = get_session()
    form = PledgeForm()
    if request.method == "GET":
        donor_arg = request.args.get("donor_id", "")
        if donor_arg.isdigit():
            form.donor_id.data = int(donor_arg)
        form.currency.data = state().reporting_currency
        form.pledged_on.data = state().today()
    preview = None
    if form.validate_on_submit():
        if request.form.get("action") == "preview":
            ok, plan = attempt(form, lambda: _plan(form))
            if ok:
                preview = plan
        else:
            ok, pledge = attempt(form, lambda: ledger_pledges.create_pledge(
                session, _plan(form).data, g.actor))
            if ok:
                flash(f"Pledge recorded with {form.instalment_count.data} instalment(s).",
                      "success")
                return redirect(url_for("pledges.detail", pledge_id=pledge.id))
    donor = session.get(Donor, form.donor_id.data) if form.donor_id.data else None
    status = INVALID if request.method == "POST" and preview is None else 200
    return render_template("pledges/form.html", form=form, donor=donor, preview=preview), status
