"""The compliance dashboard, its JSON twin, and the what-if tool. Everything here reads.

The dashboard answers: where is the lab-employee share now and against the cap, how much
more lab-employee money could come in today, how has the share moved (breaches dated),
where does the money come from, where is the share heading, and what waits for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import whatif
from app.ledger.counts import ComplianceCounts, compliance_counts
from app.ledger.finance import GoalProgress, Runway, goals_progress, months_text, runway
from app.ledger.forecast import Forecast, share_forecast
from app.ledger.series import (
    DEFAULT_DAYS,
    MonthMix,
    RangeError,
    ShareSeries,
    funding_mix,
    series_range,
    share_series,
)
from app.ledger.summary import Summary, compliance_summary
from app.presenters.compliance import (
    counts_public,
    forecast_public,
    goal_public,
    runway_public,
    series_public,
    summary_public,
)
from app.web import charts
from app.web.access import role_required
from app.web.formtools import INVALID
from app.web.public_support import dashboard_warning
from policies import Policy, PolicyError, percent_text

bp = Blueprint("compliance", __name__, url_prefix="/staff")

def _arg_date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RangeError({name: ["must be a date in the form YYYY-MM-DD"]}) from None


@dataclass(frozen=True)
class Dashboard:
    today: date
    policy: Policy
    currency: str
    summary: Summary
    series: ShareSeries
    mix: list[MonthMix]
    forecast: Forecast
    counts: ComplianceCounts
    runway: Runway
    goals: list[GoalProgress]
    #: Whether the range is the default one (the last year up to today).
    default_range: bool

    def as_json(self) -> dict:
        return {
            "as_of": self.today.isoformat(),
            "summary": summary_public(self.summary),
            "series": series_public(self.series, self.mix, self.currency, self.policy.version),
            "forecast": forecast_public(self.forecast),
            "counts": counts_public(self.counts, self.currency),
            "runway": runway_public(self.runway),
            "goals": [goal_public(g) for g in self.goals],
        }


def build_dashboard(start: date | None = None, end: date | None = None) -> Dashboard:
    session = get_session()
    st = state()
    today = st.today()
    policy = st.policy_for(session)
    currency = st.reporting_currency
    default_range = start is None and end is None
    start, end = series_range(start, end, today)
    window_start = today - timedelta(days=policy.window_days - 1)
    return Dashboard(
        today=today,
        policy=policy,
        currency=currency,
        summary=compliance_summary(session, today, policy, currency),
        series=share_series(session, start, end, policy),
        mix=funding_mix(session, start, end),
        forecast=share_forecast(session, today, policy, currency),
        counts=compliance_counts(session, window_start, today, today, st.timezone),
        runway=runway(session, today, currency),
        goals=goals_progress(session, today, current_only=True),
        default_range=default_range,
    )


def _breach_label(series: ShareSeries) -> str:
    if not series.breaches:
        return "In breach: no day in this range"
    shown = [f"{b.first_day.isoformat()} to {b.last_day.isoformat()}"
             + (" (ongoing)" if b.ongoing else "") for b in series.breaches[:2]]
    more = len(series.breaches) - len(shown)
    return "In breach: " + "; ".join(shown) + (f"; {more} more (see the table)" if more else "")


def _charts(board: Dashboard) -> dict[str, Markup]:
    cap, warning = board.policy.cap, board.policy.warning
    share_svg, _ = charts.share_chart(
        "share",
        f"Lab-employee share of funding, trailing {board.policy.window_days}-day window, "
        f"{board.series.start.isoformat()} to {board.series.end.isoformat()}",
        [charts.SharePoint(d.day, d.share, d.in_breach) for d in board.series.days],
        cap, warning, _breach_label(board.series),
    )
    breaches = [m for m in board.forecast.months if m.in_breach]
    forecast_svg, _ = charts.share_chart(
        "forecast",
        f"Forecast of the lab-employee share at each month's end, from {board.today.isoformat()}",
        [charts.SharePoint(m.end, m.share, m.in_breach) for m in board.forecast.months],
        cap, warning,
        "Projected breach: " + (", ".join(m.label for m in breaches) if breaches else "none"),
        share_label="Projected lab-employee share", dots=True,
    )
    mix_svg, _ = charts.mix_chart(
        "mix", f"Funding by month and source ({board.currency})",
        [charts.MixBar(m.label, m.lab_minor, m.individuals_minor, m.foundations_minor,
                       m.other_minor) for m in board.mix],
        board.currency,
    )
    return {"share": share_svg, "forecast": forecast_svg, "mix": mix_svg}


# Runway months in templates, truncated to one decimal: 14.26 -> "14.2".
bp.add_app_template_filter(months_text, "months")


def _links() -> dict[str, str | None]:
    """Pages the dashboard points to, where they exist and the user may open them."""
    found = {}
    for key, endpoint, permission in (("review", "review.queue", "review"),
                                      ("inkind", "inkind.index", READ),
                                      ("finance", "finance.index", READ)):
        usable = endpoint in current_app.view_functions and current_user.can(permission)
        found[key] = url_for(endpoint) if usable else None
    return found


@bp.get("/compliance")
@role_required(READ)
def dashboard():
    errors: dict[str, list[str]] = {}
    try:
        board = build_dashboard(_arg_date("from"), _arg_date("to"))
    except RangeError as error:
        errors = error.errors
        board = build_dashboard()
    return render_template("compliance/dashboard.html", board=board, charts=_charts(board),
                           range_errors=errors, links=_links(),
                           public_support_warning=dashboard_warning()), INVALID if errors else 200


@bp.get("/compliance.json")
@role_required(READ)
def dashboard_json():
    try:
        board = build_dashboard(_arg_date("from"), _arg_date("to"))
    except RangeError as error:
        return jsonify({"error": "invalid input", "errors": error.errors}), 422
    return jsonify(board.as_json())


@bp.get("/compliance/charts.css")
@role_required(READ)
def charts_css():
    response = Response(charts.charts_css(), mimetype="text/css")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- what-if --------------------------------------------------------------------------------------

class WhatIfForm(FlaskForm):
    """Read by GET (a bookmarkable query string) and by POST. The app-wide CSRFProtect checks
    every POST before the view runs, so the form itself does not; the template renders the
    token, since a form without CSRF has no hidden token field to render."""

    class Meta:
        csrf = False

    cap = StringField("Cap", validators=[Optional(), Length(max=12)],
                      description="A share strictly between 0 and 1: 0.30 means 30%.")
    window_days = IntegerField("Window (days)",
                               validators=[Optional(), NumberRange(1, whatif.MAX_DAYS_SETTING)])
    cooling_off_days = IntegerField(
        "Cooling-off period (days)",
        validators=[Optional(), NumberRange(1, whatif.MAX_DAYS_SETTING)],
    )
    start = DateField("Gifts from", validators=[Optional()])
    end = DateField("Gifts to", validators=[Optional()])

    def policy(self, base: Policy) -> Policy | None:
        """The what-if policy, or None with the problem put on the field."""
        cap = None
        if self.cap.data and self.cap.data.strip():
            try:
                cap = Decimal(self.cap.data.strip().rstrip("%"))
            except InvalidOperation:
                self.cap.errors = [*self.cap.errors, "must be a decimal such as 0.30"]
                return None
            if self.cap.data.strip().endswith("%"):
                cap = cap / 100
        try:
            return whatif.what_if_policy(base, cap=cap, window_days=self.window_days.data,
                                         cooling_off_days=self.cooling_off_days.data)
        except PolicyError as error:
            text = str(error)
            target = next((f for f in (self.window_days, self.cooling_off_days)
                           if text.startswith(f.name)), self.cap)
            target.errors = [*target.errors, text]
            return None


@bp.route("/compliance/what-if", methods=["GET", "POST"])
@role_required(READ)
def what_if():
    """Change a policy number and see which gifts would have been decided differently.
    GET with parameters or POST (with its CSRF token): either way nothing is written."""
    session = get_session()
    st = state()
    today = st.today()
    base = st.policy_for(session)
    asked = request.method == "POST" or bool(request.args)
    if request.method == "POST":
        form = WhatIfForm()
        valid = form.validate_on_submit()
    else:
        form = WhatIfForm(formdata=request.args if request.args else None)
        valid = form.validate() if asked else False
    if not asked:
        form.cap.data = str(base.cap)
        form.window_days.data = base.window_days
        form.cooling_off_days.data = base.cooling_off_days
        form.start.data = today - timedelta(days=DEFAULT_DAYS - 1)
        form.end.data = today
    result = chart = None
    if valid:
        policy = form.policy(base)
        start = form.start.data or today - timedelta(days=DEFAULT_DAYS - 1)
        end = form.end.data or today
        if start > end:
            form.start.errors = [*form.start.errors, "must not be after the end of the range"]
        elif (end - start).days + 1 > whatif.MAX_RANGE_DAYS:
            form.start.errors = [*form.start.errors,
                                 f"the range may span at most {whatif.MAX_RANGE_DAYS} days"]
        elif policy is not None:
            # Reads only; end the read transaction so nothing is held open afterwards.
            result = whatif.replay(session, base, policy, start, end)
            session.rollback()
            chart, _ = charts.whatif_chart(
                "whatif",
                f"Lab-employee share, current policy and what-if, {start.isoformat()} to "
                f"{end.isoformat()}",
                [charts.ComparePoint(d.day, d.current, d.whatif) for d in result.days],
                base.cap, policy.cap,
            )
    status = INVALID if asked and result is None else 200
    return render_template("compliance/whatif.html", form=form, base=base, result=result,
                           chart=chart, currency=st.reporting_currency, today=today,
                           percent=percent_text), status
