"""Reviewer forms: a written reason is required for every human decision."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional

REASON_HELP = ("Internal: written into the decision history and the audit trail, never "
               "published.")
PUBLIC_NOTE_HELP = (
    "Published word for word in the conflict-of-interest disclosure when this accepts an "
    "exception to a public promise (a senior decision-maker's gift, a lab's payment for "
    "evaluations, lab corporate money). Leave it empty and the disclosure lists the gift "
    "with \"No public justification given.\" Name no donor and nothing confidential."
)


def public_note_field(label: str = "Public justification (optional)") -> TextAreaField:
    return TextAreaField(label, validators=[Optional(), Length(min=3, max=2000)],
                         description=PUBLIC_NOTE_HELP)


class DecideForm(FlaskForm):
    outcome = RadioField("Decision", choices=[SelectChoice("accept", "Accept the gift"),
                                                     SelectChoice("reject", "Reject the gift")],
                         validators=[InputRequired(message="Choose accept or reject.")])
    reason = TextAreaField("Reason (internal)", validators=[InputRequired(), Length(min=3, max=2000)],
                           description=REASON_HELP)
    public_note = public_note_field()


class OverrideRequestForm(FlaskForm):
    reason = TextAreaField("Why accept this rejected gift?",
                           validators=[InputRequired(), Length(min=3, max=2000)],
                           description="A second reviewer must approve before anything changes. "
                           "Internal: never published.")
    public_note = public_note_field()


class OverrideDecisionForm(FlaskForm):
    note = TextAreaField("Note (internal)", validators=[Optional(), Length(max=2000)])
    #: The approver may replace the requester's public justification.
    public_note = public_note_field()


class DeclarationForm(FlaskForm):
    answer = RadioField("The declaration", choices=[
        SelectChoice("apply", "Apply it: record the declared role on the donor's record"),
        SelectChoice("dismiss", "Dismiss it: leave the donor's record as it is"),
    ], validators=[InputRequired(message="Choose apply or dismiss.")])
    reason = TextAreaField("Reason", validators=[InputRequired(), Length(min=3, max=2000)],
                           description="Written into the audit trail.")


class MatchAnswerForm(FlaskForm):
    #: The other record: "donor" or "roster", and its id.
    record = HiddenField(validators=[InputRequired(), AnyOf(["donor", "roster"])])
    record_id = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1)])
    reason = TextAreaField("Why (internal)", validators=[InputRequired(), Length(min=3, max=2000)],
                           description="Written into the audit trail.")
