"""The demo ledger ships finance figures (budget, cash, spend, a goal), so the finance page and the
runway show numbers instead of dashes; the same seed gives the same figures."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from app import create_app
from app.demo import DEMO_DOMAIN, DEMO_PASSWORD
from models import CashSnapshot, FiscalBudget, FundraisingGoal, MonthlySpend
from tests.webtools import csrf_token

SETTINGS = {"TESTING": True, "SECRET_KEY": "test-secret-key-not-for-production", "ORG_TIMEZONE": "UTC"}


def finance_rows(application) -> list[tuple]:
    with application.extensions["armslength"].sessions() as session:
        return [
            *session.execute(select(MonthlySpend.month, MonthlySpend.amount_minor)
                             .order_by(MonthlySpend.month)).all(),
            *session.execute(select(CashSnapshot.as_of, CashSnapshot.amount_minor)
                             .order_by(CashSnapshot.as_of)).all(),
            *session.execute(select(FiscalBudget.fiscal_year, FiscalBudget.amount_minor)
                             .order_by(FiscalBudget.fiscal_year)).all(),
            *session.execute(select(FundraisingGoal.name, FundraisingGoal.amount_minor,
                                    FundraisingGoal.starts_on, FundraisingGoal.deadline)).all(),
        ]


def demo_app(tmp_path, name: str):
    application = create_app({**SETTINGS, "DATABASE_URL": f"sqlite:///{tmp_path / name}"})
    result = application.test_cli_runner().invoke(args=["demo-data", "--seed", "7"])
    assert result.exit_code == 0, result.output
    return application, result.stdout


def test_demo_finance_page_shows_figures_and_they_are_deterministic(tmp_path):
    first, out = demo_app(tmp_path, "a.sqlite3")
    second, _ = demo_app(tmp_path, "b.sqlite3")
    try:
        rows = finance_rows(first)
        assert rows and rows == finance_rows(second)
        assert re.search(r"finance: +runway \d+\.\d months", out)

        client = first.test_client()
        login = client.get("/login").get_data(as_text=True)
        signed_in = client.post("/login", data={"email": f"viewer@{DEMO_DOMAIN}",
                                                "password": DEMO_PASSWORD,
                                                "csrf_token": csrf_token(login)})
        assert signed_in.status_code == 302
        page = html.unescape(client.get("/staff/finance/").get_data(as_text=True))
        runway = page[page.index('id="runway-months"'):page.index('id="runway-with-pledges"')]
        assert re.search(r'class="big">\d+\.\d months<', runway), runway
        assert "not recorded yet" not in page and "no month recorded yet" not in page
        budget = page[page.index('id="budget-figures"'):]
        assert re.search(r"<dt>Budget</dt><dd>[\d,]+\.00 USD", budget)
        assert re.search(r'<tr id="goal-\d+"><td>\d{4} annual fund', page)
    finally:
        first.extensions["armslength"].engine.dispose()
        second.extensions["armslength"].engine.dispose()
