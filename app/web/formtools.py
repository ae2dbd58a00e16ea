"""Small helpers the record screens share: ledger errors onto form fields, paging, search.

A view validates the form's shape with WTForms, builds a `...Create` model from it and
calls a ledger service. Whatever the model or the ledger refuses comes back here and is
shown on the field the user must correct; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from math import ceil
from typing import TypeVar

from flask import request, url_for
from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import and_, false, func, or_, select
from sqlmodel import Session
from wtforms import StringField

from app.errors import LedgerBusy, ValidationFailed
from app.http_errors import answer_for
from models.money import MoneyError, parse_typed_amount, ungroup_amount
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


# --- list filters ----------------------------------------------------------------------------

def date_arg(name: str, label: str, errors: list[str]) -> date | None:
    """?NAME=YYYY-MM-DD, or None; a malformed date is named in `errors` and ignored (a list
    never refuses to show because of a bad filter)."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{label}: {text[:40]!r} is not a date (YYYY-MM-DD); ignored.")
        return None


def choice_arg(name: str, label: str, allowed: Collection[str], errors: list[str]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        errors.append(f"Unknown {label.lower()} {value[:40]!r}; ignored.")
        return None
    return value


def id_arg(name: str) -> int | None:
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value < 2**31 else None


@dataclass(frozen=True)
class AmountRange:
    """?min=&max= as typed, in a currency's major units ("1,000" or "250.50"); the same
    typed amounts may be read in several currencies (a list mixing them)."""

    low: str | None = None
    high: str | None = None

    def minor(self, currency: str) -> tuple[int | None, int | None]:
        return (parse_typed_amount(self.low, currency) if self.low else None,
                parse_typed_amount(self.high, currency) if self.high else None)

    def args(self) -> dict:
        return {k: v for k, v in (("min", self.low), ("max", self.high)) if v}

    def __bool__(self) -> bool:
        return bool(self.low or self.high)


def amount_range_arg(currencies: Collection[str], errors: list[str]) -> AmountRange:
    """?min= and ?max=, each kept only if it reads as an amount in every currency given
    (thousands separators allowed); a low above the high is refused too."""
    typed = {}
    for name, label in (("min", "Amount from"), ("max", "Amount to")):
        text = request.args.get(name, "").strip()[:40]
        if not text:
            continue
        try:
            for currency in currencies:
                parse_typed_amount(text, currency)
        except MoneyError as error:
            errors.append(f"{label}: {error}; ignored.")
            continue
        typed[name] = text
    found = AmountRange(typed.get("min"), typed.get("max"))
    if found.low and found.high and currencies:
        low, high = found.minor(next(iter(currencies)))
        if low > high:
            errors.append("Amount from is more than amount to; the amounts are ignored.")
            return AmountRange()
    return found


def amount_between(amount_column, currency_column, amounts: AmountRange,
                   currencies: Collection[str]) -> list:
    """WHERE conditions for `amounts` on rows in several currencies: each currency's rows
    compared with the typed amounts read in that currency ("1000" is 1000 dollars and 1000
    yen, never 1000 minor units of each)."""
    if not amounts:
        return []
    if currency_column is None:
        (currency,) = currencies
        return _between(amount_column, *amounts.minor(currency))
    per_currency = [and_(currency_column == c, *_between(amount_column, *amounts.minor(c)))
                    for c in sorted(currencies)]
    return [or_(*per_currency)] if per_currency else [false()]


def _between(column, low: int | None, high: int | None) -> list:
    conditions = []
    if low is not None:
        conditions.append(column >= low)
    if high is not None:
        conditions.append(column <= high)
    return conditions
