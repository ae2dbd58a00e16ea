"""The audit trail: every entry, filterable and newest first, and a check of the hash chain."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional, ValidationError

from app.auth.roles import READ
from app.db import get_session
from app.extensions import audit_keys, state
from app.ledger.verification import verify_audit
from app.web.access import role_required
from models import AuditEntry

bp = Blueprint("audit", __name__, url_prefix="/staff/audit")

PAGE_SIZE = 50
#: Ids are INTEGER columns; a larger number names no entry (and PostgreSQL would refuse it).
MAX_ID = 2**31 - 1


class AuditFilterForm(FlaskForm):
    """Filters travel in the query string, so a filtered view can be bookmarked or shared."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    action = SelectField("Action", choices=[], validate_choice=False)
    entity_type = SelectField("Entity", choices=[], validate_choice=False)
    entity_id = IntegerField("Entity id", validators=[Optional(), NumberRange(1, MAX_ID)])
    actor = StringField("Actor contains", validators=[Optional()])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

    def validate_actor(self, field):
        if field.data and "\x00" in field.data:
            raise ValidationError("must not contain NUL characters")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("must not be before the start date")


def _distinct(column) -> list[str]:
    return list(get_session().execute(select(column).distinct().order_by(column)).scalars())


def _local_midnight_utc(day: date) -> datetime:
    """Start of a day in the organisation's time zone, as a UTC instant (entries store UTC)."""
    return datetime.combine(day, time.min, tzinfo=state().timezone).astimezone(UTC)


def _filtered(form: AuditFilterForm, entry_id: int | None):
    conditions = []
    if entry_id is not None:
        conditions.append(AuditEntry.id == entry_id)
    if form.action.data:
        conditions.append(AuditEntry.action == form.action.data)
    if form.entity_type.data:
        conditions.append(AuditEntry.entity_type == form.entity_type.data)
    if form.entity_id.data is not None:
        conditions.append(AuditEntry.entity_id == form.entity_id.data)
    if form.actor.data and form.actor.data.strip():
        conditions.append(
            func.lower(AuditEntry.actor).contains(form.actor.data.strip().lower(), autoescape=True)
        )
    if form.date_from.data:
        conditions.append(AuditEntry.at >= _local_midnight_utc(form.date_from.data))
    if form.date_to.data:
        conditions.append(AuditEntry.at < _local_midnight_utc(form.date_to.data + timedelta(days=1)))
    return conditions


def readable(data: dict) -> list[tuple[str, str]]:
    """An entry's data as (label, text) pairs a person can read; nested values as compact JSON."""
    items = []
    for key in sorted(data):
        value = data[key]
        if value is None or value == "" or value == []:
            text = "—"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        else:
            text = str(value)
        items.append((key.replace("_", " "), text))
    return items


def _positive_int(name: str) -> int | None:
    value = request.args.get(name, "")
    if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID:
        return int(value)
    return None


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    form = AuditFilterForm(formdata=request.args)
    form.action.choices = [SelectChoice("", "any")] + [SelectChoice(a) for a in _distinct(AuditEntry.action)]
    form.entity_type.choices = [SelectChoice("", "any")] + [
        SelectChoice(t) for t in _distinct(AuditEntry.entity_type)]
    entry_id = _positive_int("entry")
    if not form.validate():
        return render_template("audit/index.html", form=form, entries=[], total=0, page=1,
                               pages=1, entry_id=entry_id, args={}), 400
    conditions = _filtered(form, entry_id)
    total = session.execute(select(func.count(AuditEntry.id)).where(*conditions)).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(_positive_int("page") or 1, pages)
    entries = session.execute(
        select(AuditEntry).where(*conditions).order_by(AuditEntry.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).scalars().all()
    # The filters again, for the pager's links.
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    tz = state().timezone
    rows = [(entry, entry.at.astimezone(tz), readable(entry.data or {})) for entry in entries]
    return render_template("audit/index.html", form=form, entries=rows, total=total, page=page,
                           pages=pages, entry_id=entry_id, args=args)


@bp.get("/verify")
@role_required(READ)
def verify():
    """Recompute every entry's hash from the first to the last, and say where the chain breaks;
    check the chain against every signed checkpoint and each published disclosure; compare
    every ledger row with the hash its latest entry recorded."""
    result = verify_audit(get_session(), audit_keys())
    return render_template("audit/verify.html", report=result.chain, result=result)
