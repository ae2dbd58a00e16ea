"""Per-app state, bound in create_app: engine, session factory, policy, settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.ledger.policy_store import PolicyCache
from policies import Policy


@dataclass
class State:
    engine: Engine
    sessions: sessionmaker
    #: The policy file's policy: in force until a version is stored in the database.
    policy: Policy
    policies: PolicyCache
    reporting_currency: str
    timezone: ZoneInfo
    #: The largest gift recorded from typed input (MAX_GIFT_MINOR), reporting minor units.
    max_gift_minor: int

    def policy_for(self, session: Session) -> Policy:
        """The policy version in force now (the newest stored one)."""
        return self.policies.current(session)

    def today(self) -> date:
        """Today's date in the organisation's time zone (gift dates are local dates)."""
        return datetime.now(self.timezone).date()


def state() -> State:
    return current_app.extensions["armslength"]


def audit_keys():
    """The audit signing key and trusted public keys (app.ledger.signing.AuditKeys)."""
    return current_app.extensions["audit_keys"]
