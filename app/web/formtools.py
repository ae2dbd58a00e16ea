"""Small helpers the record screens share: ledger errors onto form fields, paging, search.

A view validates the form's shape with WTForms, builds a `...Create` model from it and
calls a ledger service. Whatever the model or the ledger refuses comes back here and is
shown on the field the user must correct; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from math import ceil
from typing import TypeVar

from flask import request, url_for
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


class ButtonForm(FlaskForm):
    """A form that is only a button (remove, delete): it carries the CSRF token alone."""


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


# --- sorting and page links ----------------------------------------------------------------

@dataclass(frozen=True)
class Sort:
    """How a list is sorted: ?sort=KEY&dir=asc|desc, KEY one of the list's sortable columns.
    An unknown key or direction falls back to the list's default (never an error: these are
    links people share)."""

    key: str
    descending: bool
    #: Keys whose first click sorts descending (dates, amounts: the newest or largest first).
    desc_first: frozenset[str]

    def next_dir(self, key: str) -> str:
        """The direction the column's header link asks for: the other one if the list is
        sorted by it, else the column's natural first direction."""
        if key == self.key:
            return "asc" if self.descending else "desc"
        return "desc" if key in self.desc_first else "asc"

    def aria(self, key: str) -> str:
        if key != self.key:
            return "none"
        return "descending" if self.descending else "ascending"


def sort_from_args(keys: Collection[str], default: str, *, descending: bool,
                   desc_first: Collection[str] = ()) -> Sort:
    key = request.args.get("sort", "")
    if key not in keys:
        return Sort(default, descending, frozenset(desc_first))
    direction = request.args.get("dir", "")
    if direction not in ("asc", "desc"):
        direction = "desc" if key in desc_first else "asc"
    return Sort(key, direction == "desc", frozenset(desc_first))


def ordered(sort: Sort, columns: Mapping[str, object], tiebreak) -> list:
    """ORDER BY for `sort`: its column, then `tiebreak` (a unique column) the same way, so
    pages never overlap or skip a row."""
    column = columns[sort.key]
    if sort.descending:
        return [column.desc(), tiebreak.desc()]
    return [column.asc(), tiebreak.asc()]


def list_url(**changes) -> str:
    """This list's address with some query arguments changed (None removes one): the sort
    links and page numbers keep the filters in force."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def page_links(number: int, pages: int, around: int = 2) -> list[int | None]:
    """Page numbers to link: the first, the last, and `around` either side of the current
    one; None marks a gap. 1 … 4 5 [6] 7 8 … 20."""
    shown = sorted({1, pages, *range(max(1, number - around), min(pages, number + around) + 1)})
    links: list[int | None] = []
    for n in shown:
        if links and n - (links[-1] or 0) > 1:
            links.append(None)
        links.append(n)
    return links
