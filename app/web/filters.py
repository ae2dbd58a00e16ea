"""Jinja filters for money, shares and dates."""

from __future__ import annotations

from datetime import date

from flask import Flask
from markupsafe import Markup, escape

from models.money import display_amount, format_amount
from policies import percent_text


def day(value) -> Markup | str:
    """A date in a page: a <time> that never wraps at its hyphens (narrow table cells on
    phones broke "2026-12-04" over two lines). None and "" show as nothing."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if isinstance(value, date) else str(value)
    return Markup('<time class="day" datetime="{0}">{0}</time>').format(escape(text))


def described_by(field, attributes: dict) -> dict:
    """A form control's attributes with aria-describedby naming its hint and its error
    (the ids the `field` macro gives them) and aria-invalid when it has an error."""
    attributes = dict(attributes)
    ids = [f"{field.id}-hint"] if field.description else []
    if field.errors:
        ids.append(f"{field.id}-error")
        attributes["aria-invalid"] = "true"
    if ids:
        attributes["aria-describedby"] = " ".join(
            [*str(attributes.get("aria-describedby", "")).split(), *ids])
    return attributes


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["day"] = day
    from app.web.formtools import list_url, page_links  # noqa: PLC0415 (app.web imports this)

    app.jinja_env.globals["list_url"] = list_url
    app.jinja_env.globals["page_links"] = page_links
    app.jinja_env.globals["described_by"] = described_by
    app.jinja_env.filters["money"] = lambda minor, currency: display_amount(minor, currency)
    app.jinja_env.filters["amount"] = lambda minor, currency: format_amount(minor, currency)
    app.jinja_env.filters["percent"] = lambda value, places=1: percent_text(value, places)
    app.jinja_env.globals["ORG_NAME"] = app.config["ORG_NAME"]
    app.jinja_env.globals["ORG_DESCRIPTION"] = app.config.get("ORG_DESCRIPTION") or ""
    app.jinja_env.globals["ORG_CONTACT_EMAIL"] = app.config.get("ORG_CONTACT_EMAIL") or None
