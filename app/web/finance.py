"""Finance screens: budget, cash on hand, monthly spend, runway, goals, multi-year pledges.

Anyone who may read sees them; recording figures needs the `budget` permission (finance,
admin). Forms check shape; the ledger's finance services write, lock and audit.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, IntegerField, MonthField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import finance
from app.web.access import role_required
from app.web.formtools import INVALID, AmountField, attempt
from models import CashSnapshot, MonthlySpend
from models.finance import (
    CashSnapshotCreate,
    FiscalBudgetCreate,
    FundraisingGoalCreate,
    MonthlySpendCreate,
)

bp = Blueprint("finance", __name__, url_prefix="/staff/finance")

BUDGET = "budget"

# Runway months in templates, truncated to one decimal: 14.26 -> "14.2".
bp.add_app_template_filter(finance.months_text, "months")
AMOUNT_HINT = "In major units of the reporting currency, e.g. 1,250,000.00"


def _amount(label: str, hint: str = AMOUNT_HINT) -> AmountField:
    return AmountField(label, validators=[DataRequired(), Length(max=40)], description=hint)


class CashForm(FlaskForm):
    as_of = DateField("Counted on", validators=[InputRequired()])
    amount = _amount("Cash on hand")


class SpendForm(FlaskForm):
    month = MonthField("Month", validators=[InputRequired()])
    amount = _amount("Spent in the month")


class BudgetForm(FlaskForm):
    fiscal_year = IntegerField("Fiscal year", validators=[InputRequired(), NumberRange(2000, 2200)],
                               description="The calendar year.")
    amount = _amount("Budget")


class GoalForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)],
                       description="e.g. Year-end campaign")
    amount = _amount("Amount to raise")
    starts_on = DateField("Counting from", validators=[InputRequired()])
    deadline = DateField("Deadline", validators=[InputRequired()])


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    st = state()
    today = st.today()
    return render_template(
        "finance/index.html",
        today=today,
        currency=st.reporting_currency,
        runway=finance.runway(session, today, st.reporting_currency),
        budget=finance.budget_year(session, today.year),
        goals=finance.goals_progress(session, today),
        pledges=finance.multi_year_pledges(session, today),
        cash=session.execute(select(CashSnapshot).order_by(CashSnapshot.as_of.desc())
                             .limit(12)).scalars().all(),
        spend=session.execute(select(MonthlySpend).order_by(MonthlySpend.month.desc())
                              .limit(24)).scalars().all(),
        may_edit=current_user.can(BUDGET),
    )


def _record(form: FlaskForm, title: str, build: Callable, service: Callable, done: str):
    """Show the form; on a valid POST build the input model and call the service."""
    session = get_session()
    st = state()
    if form.validate_on_submit():
        ok, _ = attempt(form, lambda: service(session, build(st.reporting_currency), g.actor,
                                              st.reporting_currency))
        if ok:
            flash(done, "success")
            return redirect(url_for("finance.index"))
    status = INVALID if request.method == "POST" else 200
    return render_template("finance/form.html", form=form, title=title,
                           currency=st.reporting_currency), status


@bp.route("/cash", methods=["GET", "POST"])
@role_required(BUDGET)
def record_cash():
    form = CashForm()
    if request.method == "GET":
        form.as_of.data = state().today()
    return _record(
        form, "Record cash on hand",
        lambda currency: CashSnapshotCreate(as_of=form.as_of.data, amount=form.amount.data,
                                            currency=currency),
        finance.record_cash, "Cash on hand recorded.",
    )


@bp.route("/spend", methods=["GET", "POST"])
@role_required(BUDGET)
def record_spend():
    form = SpendForm()
    return _record(
        form, "Record a month's spend",
        lambda currency: MonthlySpendCreate(month=form.month.data, amount=form.amount.data,
                                            currency=currency),
        finance.record_spend, "Monthly spend recorded.",
    )


@bp.route("/budget", methods=["GET", "POST"])
@role_required(BUDGET)
def set_budget():
    form = BudgetForm()
    if request.method == "GET":
        form.fiscal_year.data = state().today().year
    return _record(
        form, "Set a fiscal year's budget",
        lambda currency: FiscalBudgetCreate(fiscal_year=form.fiscal_year.data,
                                            amount=form.amount.data, currency=currency),
        finance.set_budget, "Budget saved.",
    )


@bp.route("/goals/new", methods=["GET", "POST"])
@role_required(BUDGET)
def create_goal():
    form = GoalForm()
    return _record(
        form, "New fundraising goal",
        lambda currency: FundraisingGoalCreate(name=form.name.data, amount=form.amount.data,
                                               currency=currency, starts_on=form.starts_on.data,
                                               deadline=form.deadline.data),
        finance.create_goal, "Goal created.",
    )
