"""Per-app state, bound in create_app: engine, session factory, policy, settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from policies import Policy


@dataclass
class State:
    engine: Engine
    sessions: sessionmaker
    policy: Policy
    reporting_currency: str
    timezone: ZoneInfo

    def today(self) -> date:
        """Today's date in the organisation's time zone (gift dates are local dates)."""
        return datetime.now(self.timezone).date()


def state() -> State:
    return current_app.extensions["armslength"]
