"""Settings: read from the environment, or from the mapping given to create_app.

Same names in both places, so a test passes {"DATABASE_URL": ..., "TESTING": True}
and production sets DATABASE_URL in the environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: name -> default. None means "no default".
DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # computed: a SQLite file in the instance folder
    "SECRET_KEY": None,
    "POLICY_FILE": None,  # None: the policy shipped in policies/policy.toml
    "REPORTING_CURRENCY": "USD",
    "ORG_NAME": "Independent Evaluation Institute",
    "ORG_TIMEZONE": "UTC",
    "ARMSLENGTH_ENV": "development",
    "TESTING": False,
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
}

BOOLEAN = {"TESTING"}
INTEGER = {"MAX_CONTENT_LENGTH"}
WEAK_SECRETS = {"", "changethis", "secret", "dev", "development"}


class ConfigError(RuntimeError):
    """A setting that is missing or unsafe."""


def _coerce(name: str, value: object) -> object:
    if isinstance(value, str) and name in BOOLEAN:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(value, str) and name in INTEGER:
        return int(value)
    return value


def load_settings(overrides: dict | None, instance_path: str) -> dict:
    """Defaults < environment < explicit mapping."""
    settings: dict = dict(DEFAULTS)
    for name in DEFAULTS:
        if name in os.environ:
            settings[name] = _coerce(name, os.environ[name])
    for name, value in (overrides or {}).items():
        settings[name] = _coerce(name, value)

    if not settings["DATABASE_URL"]:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        settings["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'armslength.sqlite3'}"

    production = settings["ARMSLENGTH_ENV"] == "production"
    secret = settings["SECRET_KEY"]
    if production and (not secret or str(secret).lower() in WEAK_SECRETS or len(str(secret)) < 32):
        raise ConfigError("SECRET_KEY must be set to a random value of 32+ characters in production")
    if not secret:
        # Development only: a fresh random key per process; sessions end on restart.
        settings["SECRET_KEY"] = secrets.token_hex(32)
    settings["REPORTING_CURRENCY"] = str(settings["REPORTING_CURRENCY"]).upper()
    return settings
