"""Jinja filters for money, shares and dates."""

from __future__ import annotations

from flask import Flask

from models.money import display_amount, format_amount
from policies import percent_text


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["money"] = lambda minor, currency: display_amount(minor, currency)
    app.jinja_env.filters["amount"] = lambda minor, currency: format_amount(minor, currency)
    app.jinja_env.filters["percent"] = lambda value, places=1: percent_text(value, places)
    app.jinja_env.globals["ORG_NAME"] = app.config["ORG_NAME"]
