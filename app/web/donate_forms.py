"""The public donation form. It checks shape only; the independence policy decides later."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from app.payments.currencies import GivingCurrency
from app.web.formtools import AmountField
from models.money import MoneyError, display_amount

OTHER = "other"
PLAIN_NUMBER = "Enter an amount as a plain number, such as 75, 75.50 or 1,250.50."


class DonateForm(FlaskForm):
    currency = SelectField("Currency", choices=[], validators=[InputRequired()])
    amount = RadioField("Amount", choices=[], validators=[InputRequired(message="Choose an amount.")])
    other_amount = AmountField("Other amount", validators=[Optional(), Length(max=20)],
                               description="In the currency above, e.g. 75 or 75.50.")
    frequency = RadioField("How often", choices=[SelectChoice("once", "Once"),
                                                 SelectChoice("monthly", "Every month")],
                           default="once", validators=[InputRequired()])
    name = StringField("Full name", validators=[DataRequired(message="Tell us your name."),
                                                Length(max=200)])
    email = EmailField("Email", validators=[
        DataRequired(message="We need an email address for your receipt."),
        Email(message="Enter a valid email address.", check_deliverability=False),
        Length(max=320),
    ])
    employer = StringField("Employer", validators=[Optional(), Length(max=200)],
                           description="Optional.")
    lab = SelectField("Is your employer a frontier AI lab, or part of one?", choices=[],
                      default="", validators=[Optional()])
    senior = BooleanField("I am a senior decision-maker there (for example an executive, a "
                          "board member, or someone who sets the lab's direction)")
    daf = BooleanField("I am giving through a donor-advised fund")
    daf_sponsor = StringField("Fund sponsor", validators=[Optional(), Length(max=200)],
                              description="The organisation that holds the fund.")
    daf_advisor = StringField("Advisor name on the fund", validators=[Optional(), Length(max=200)])
    anonymous = BooleanField("Don't list my name publicly")

    def setup(self, currencies: list[GivingCurrency], labs: list[tuple[int, str]],
              shown: GivingCurrency) -> None:
        """Choices depend on settings and data: currencies, that currency's presets, the labs."""
        self.currencies = {c.code: c for c in currencies}
        self.currency.choices = [SelectChoice(c.code, c.code) for c in currencies]
        if not self.currency.data:
            self.currency.data = shown.code
        self.shown = self.currencies.get(self.currency.data, shown)
        self.amount.choices = [SelectChoice(p, self.shown.label(p)) for p in self.shown.presets] + [
            SelectChoice(OTHER, "Other amount")]
        self.lab.choices = [SelectChoice("", "No, or I don't work for one")] + [
            SelectChoice(str(org_id), name) for org_id, name in labs]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        currency = self.currencies.get(self.currency.data)
        if currency is None:
            return False
        self.amount_minor = self._amount(currency)
        if self.amount_minor is None:
            valid = False
        if self.senior.data and not self.lab.data:
            self.lab.errors.append("Tell us which lab, or untick the senior decision-maker box.")
            valid = False
        if self.daf.data:
            for field, what in ((self.daf_sponsor, "the fund's sponsor"),
                                (self.daf_advisor, "the advisor's name")):
                if not (field.data or "").strip():
                    field.errors.append(f"For a gift through a donor-advised fund, give {what}.")
                    valid = False
        return valid

    def _amount(self, currency: GivingCurrency) -> int | None:
        """The chosen amount in minor units, or None with an error on the right field."""
        if self.amount.data in currency.presets:
            return currency.minor(self.amount.data)
        if self.amount.data != OTHER:
            if self.amount.data:
                self.amount.errors = [f"Choose one of the amounts shown for {currency.code}, or "
                                      "enter another amount."]
            return None
        if self.other_amount.errors:  # a comma that could be a decimal comma ("1,5")
            self.other_amount.errors = [PLAIN_NUMBER]
            return None
        text = (self.other_amount.data or "").strip()
        if not text:
            self.other_amount.errors.append("Enter the amount you would like to give.")
            return None
        try:
            minor = currency.minor(text)
        except MoneyError as error:
            if "decimal places" in str(error):
                message = (f"{currency.code} amounts are whole numbers." if "has 0" in str(error)
                           else f"Use at most the decimal places {currency.code} has.")
            elif "greater than zero" in str(error):
                message = "The amount must be more than zero."
            else:
                message = PLAIN_NUMBER
            self.other_amount.errors.append(message)
            return None
        if not currency.minimum_minor <= minor <= currency.maximum_minor:
            self.other_amount.errors.append(
                f"Online gifts in {currency.code} are between "
                f"{display_amount(currency.minimum_minor, currency.code)} and "
                f"{display_amount(currency.maximum_minor, currency.code)}. For a larger gift "
                "please contact us.")
            return None
        return minor
