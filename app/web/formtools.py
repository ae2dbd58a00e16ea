"""Small helpers the record screens share: ledger errors onto form fields, paging, search.

A view validates the form's shape with WTForms, builds a `...Create` model from it and
calls a ledger service. Whatever the model or the ledger refuses comes back here and is
shown on the field the user must correct; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil
from typing import TypeVar

from flask import request
from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session
from wtforms import StringField

from app.errors import LedgerBusy, ValidationFailed
from app.http_errors import answer_for
from models.money import ungroup_amount
from models.schemas import field_errors

T = TypeVar("T")

#: Status for a form sent back with errors (the browser shows it like any page).
INVALID = 422


class AmountField(StringField):
    """A money amount as typed: "30,000.50" arrives as "30000.50", the plain decimal string
    the models parse in the currency's minor units. An ambiguous comma ("30,00") is the
    field's own error; the box keeps what was typed."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data:
            typed = self.data
            try:
                self.data = ungroup_amount(typed)
            except ValueError:
                self.data = typed.strip()
                raise

    def _value(self) -> str:
        return self.raw_data[0] if self.raw_data else super()._value()


def blank_to_none(value: str | None) -> str | None:
    """Empty text inputs mean "not given"; the input models want None for that."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def place_errors(form: FlaskForm, errors: dict[str, list[str]],
                 names: dict[str, str] | None = None) -> None:
    """Put {"model.path": [messages]} on the form fields; the rest on the form itself.

    `names` maps a model field to the form field showing it, where they differ.
    A model-level message that begins with a field's name ("end_date must not be ...")
    goes on that field.
    """
    names = names or {}
    for location, messages in errors.items():
        head = location.split(".")[0]
        target = names.get(location) or names.get(head) or head
        for message in messages:
            field_name = target
            first_word = message.split(" ")[0].rstrip(":")
            if head in ("", "body") and first_word in form._fields:
                field_name = first_word
            field = form._fields.get(field_name)
            if field is not None and field_name != "csrf_token":
                field.errors = [*field.errors, message]
            else:
                form.form_errors = [*form.form_errors, message]


def attempt(form: FlaskForm, action: Callable[[], T],
            names: dict[str, str] | None = None) -> tuple[bool, T | None]:
    """Run `action` (build the input model, call the ledger). On refused input, put the
    messages on the form and return (False, None); the ledger has rolled back."""
    try:
        return True, action()
    except ValidationError as error:
        place_errors(form, field_errors(error), names)
    except ValidationFailed as error:
        place_errors(form, error.errors, names)
    except LedgerBusy as error:
        form.form_errors = [*form.form_errors, answer_for(error).message]
    return False, None


@dataclass(frozen=True)
class Page:
    """One page of a list: which rows, and enough to draw the page links."""

    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_number(total: int, per_page: int) -> Page:
    """The page named by ?page=N of a list of `total` rows (the last page if N is beyond it)."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
    page = Page(number, per_page, total)
    return Page(page.pages, per_page, total) if page.number > page.pages else page


def page_of(session: Session, query, per_page: int = 25) -> tuple[Page, list]:
    """Run `query` (a select of one entity) for the page named by ?page=N."""
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())
                            ).scalar_one()
    page = page_number(total, per_page)
    rows = session.execute(query.offset(page.offset).limit(per_page)).scalars().all()
    return page, list(rows)
