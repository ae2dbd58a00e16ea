"""Fixtures for the Stripe tests: the app talks to the real stripe SDK, pointed at a
local pytest-httpserver stub instead of Stripe, and receives webhooks signed with a
test secret. Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import pytest

from app import create_app
from app.db.locking import ensure_lock_row
from tests.stripe.stripe_stubs import SECRET_KEY, WEBHOOK_SECRET


@pytest.fixture
def stripe_settings() -> dict:
    """Extra settings for the app; a test parametrises this to change them."""
    return {}


@pytest.fixture
def app(database_url, httpserver, stripe_settings):
    application = create_app({
        "DATABASE_URL": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ORG_TIMEZONE": "UTC",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"http://{httpserver.host}:{httpserver.port}",
        # A failing stub answer must fail the test at once, not after the SDK's retries.
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        **stripe_settings,
    })
    with application.app_context():
        with application.extensions["armslength"].sessions() as session:
            ensure_lock_row(session)
    yield application
    application.extensions["armslength"].engine.dispose()


@pytest.fixture(autouse=True)
def _no_unexpected_stripe_calls(httpserver):
    """Every call the app made to the stub must have been one a test expected."""
    yield
    httpserver.check_assertions()
