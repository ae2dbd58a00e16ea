"""Staff pages for campaigns, appeals and funds: the list with each one's progress against
its goal, a page for each, creating one, and closing or reopening it.

Writes go through app.ledger.campaigns (audited and sealed). What each has raised is
accepted cash net of refunds (app.ledger.giving), the same figure the reports show.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import Duplicate
from app.extensions import state
from app.ledger import campaigns
from app.web.access import role_required
from app.web.formtools import INVALID, AmountField, attempt, blank_to_none
from app.web.gift_forms import optional_int
from models.campaigns import APPEAL_CHANNELS
from models.schemas import AppealCreate, CampaignCreate, FundCreate

bp = Blueprint("campaigns", __name__, url_prefix="/staff/campaigns")

TITLES = {"campaign": "Campaign", "appeal": "Appeal", "fund": "Fund"}
CODE_HINT = "Lower-case letters, digits and dashes, e.g. year-end-2026. Used in links and imports."


class _Common(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=60)], description=CODE_HINT)
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    goal = AmountField("Goal", validators=[Optional(), Length(max=24)],
                       description="Optional, in the reporting currency, e.g. 250,000.")


class CampaignForm(_Common):
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    starts_on = DateField("Starts on", validators=[InputRequired()])
    ends_on = DateField("Ends on", validators=[Optional()],
                        description="Optional. After this day the donate link no longer takes it.")

    def to_input(self) -> CampaignCreate:
        return CampaignCreate(code=self.code.data, name=self.name.data,
                              goal=blank_to_none(self.goal.data),
                              description=blank_to_none(self.description.data),
                              starts_on=self.starts_on.data, ends_on=self.ends_on.data)


class AppealForm(_Common):
    campaign_id = SelectField("Campaign", choices=[], coerce=optional_int, validate_choice=False,
                              validators=[Optional()])
    channel = SelectField("Channel", choices=[SelectChoice(c, c.capitalize())
                                              for c in APPEAL_CHANNELS], default="mail")
    sent_on = DateField("Sent on", validators=[Optional()])

    def to_input(self) -> AppealCreate:
        return AppealCreate(code=self.code.data, name=self.name.data,
                            goal=blank_to_none(self.goal.data),
                            campaign_id=self.campaign_id.data,
                            channel=self.channel.data, sent_on=self.sent_on.data)


class FundForm(_Common):
    restricted = BooleanField("Restricted", description="The donor set what the money may be "
                                                       "spent on; it is reported apart.")
    purpose = TextAreaField("Purpose", validators=[Optional(), Length(max=1000)],
                            description="Required for a restricted fund.")

    def to_input(self) -> FundCreate:
        return FundCreate(code=self.code.data, name=self.name.data,
                          goal=blank_to_none(self.goal.data), restricted=self.restricted.data,
                          purpose=blank_to_none(self.purpose.data))


FORMS = {"campaign": CampaignForm, "appeal": AppealForm, "fund": FundForm}
CREATE = {"campaign": campaigns.create_campaign, "appeal": campaigns.create_appeal,
          "fund": campaigns.create_fund}


class ActiveForm(FlaskForm):
    """The close / reopen button: a CSRF token only."""


def _kind(kind: str) -> str:
    if kind not in campaigns.MODELS:
        abort(404)
    return kind


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    currency = state().reporting_currency
    lists = {kind: campaigns.progress(session, kind, currency) for kind in campaigns.MODELS}
    return render_template("campaigns/index.html", lists=lists, titles=TITLES,
                           currency=currency)


@bp.get("/<kind>/<int:row_id>")
@role_required(READ)
def detail(kind: str, row_id: int):
    kind = _kind(kind)
    session = get_session()
    row = campaigns.by_id(session, kind, row_id)
    currency = state().reporting_currency
    (progress,) = campaigns.progress(session, kind, currency, ids=[row_id])
    appeals = (campaigns.progress(session, "appeal", currency, of_campaign=row_id)
               if kind == "campaign" else [])
    campaign = (campaigns.by_id(session, "campaign", row.campaign_id)
                if kind == "appeal" and row.campaign_id else None)
    return render_template("campaigns/detail.html", kind=kind, row=row, p=progress,
                           appeals=appeals, campaign=campaign, titles=TITLES,
                           active_form=ActiveForm())


@bp.route("/<kind>/new", methods=["GET", "POST"])
@role_required("campaigns.write")
def create(kind: str):
    kind = _kind(kind)
    session = get_session()
    form = FORMS[kind]()
    if kind == "appeal":
        form.campaign_id.choices = [SelectChoice("", "— none —"), *[
            SelectChoice(str(i), label) for i, label in campaigns.choices(session, "campaign")]]
    if kind == "campaign" and request.method == "GET":
        form.starts_on.data = state().today()
    if form.validate_on_submit():
        try:
            ok, row = attempt(form, lambda: CREATE[kind](session, form.to_input(), g.actor,
                                                         state().reporting_currency))
        except Duplicate:
            ok, row = False, None
            form.code.errors = [*form.code.errors, "This code is taken; choose another."]
        if ok:
            flash(f"{TITLES[kind]} {row.code} created.", "success")
            return redirect(url_for("campaigns.detail", kind=kind, row_id=row.id))
    status = INVALID if request.method == "POST" else 200
    return render_template("campaigns/form.html", form=form, kind=kind, titles=TITLES), status


@bp.post("/<kind>/<int:row_id>/active")
@role_required("campaigns.write")
def set_active(kind: str, row_id: int):
    kind = _kind(kind)
    if not ActiveForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    row = campaigns.set_active(get_session(), kind, row_id, active, g.actor)
    flash(f"{TITLES[kind]} {row.code} {'reopened' if active else 'closed'}.", "success")
    return redirect(url_for("campaigns.detail", kind=kind, row_id=row_id))
