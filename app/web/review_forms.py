"""Reviewer forms: a written reason is required for every human decision."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

REASON_HELP = "Written into the decision history and the audit trail."


class DecideForm(FlaskForm):
    outcome = RadioField("Decision", choices=[SelectChoice("accept", "Accept the gift"),
                                                     SelectChoice("reject", "Reject the gift")],
                         validators=[InputRequired(message="Choose accept or reject.")])
    reason = TextAreaField("Reason", validators=[InputRequired(), Length(min=3, max=2000)],
                           description=REASON_HELP)


class OverrideRequestForm(FlaskForm):
    reason = TextAreaField("Why accept this rejected gift?",
                           validators=[InputRequired(), Length(min=3, max=2000)],
                           description="A second reviewer must approve before anything changes.")


class OverrideDecisionForm(FlaskForm):
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)])
