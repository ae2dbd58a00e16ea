"""Settings: read from the environment, or from the mapping given to create_app.

Same names in both places, so a test passes {"DATABASE_URL": ..., "TESTING": True}
and production sets DATABASE_URL in the environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from models.money import GIFT_CEILING_MINOR

#: name -> default. None means "no default".
DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # computed: a SQLite file in the instance folder
    "SECRET_KEY": None,  # nosec B105  # no default: None means "not set"
    "POLICY_FILE": None,  # None: the policy shipped in policies/policy.toml
    "REPORTING_CURRENCY": "USD",
    "ORG_NAME": "Independent Evaluation Institute",
    "ORG_TIMEZONE": "UTC",
    #: How letters write dates and amounts for people (a Babel/CLDR locale: en_US gives
    #: "December 4, 2026" and "$500.00", en_GB "4 December 2026", de_DE "1.234,56 €").
    "ORG_LOCALE": "en_US",
    "ARMSLENGTH_ENV": "development",
    "TESTING": False,
    #: Reviewers and admins sign in with a second factor (TOTP). None: on in production,
    #: off in development; production refuses to start with it set off.
    "REQUIRE_SECOND_FACTOR": None,
    #: Largest request body: a staff CSV import upload is the largest thing anyone sends.
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
    #: Reverse proxies in front of gunicorn (docs/deployment.md). With N, the client's
    #: address is taken from the N-th last X-Forwarded-For entry (sign-in throttling and the
    #: donate rate limit count per address); 0 trusts no forwarding header.
    "TRUSTED_PROXIES": 0,
    #: Largest JSON API body. One gift with the most attributions is a few kilobytes.
    "API_MAX_CONTENT_LENGTH": 1024 * 1024,
    #: The largest gift recorded from the staff form, the API or a CSV import, in
    #: reporting-currency minor units (100,000,000.00 USD); a larger one is refused as a
    #: typing error. At most models.money.GIFT_CEILING_MINOR (which keeps every sum of money
    #: inside a 64-bit integer). Gifts at or above the policy's large_gift threshold, but
    #: below this, are recorded and held for a reviewer.
    "MAX_GIFT_MINOR": 10**10,
    # Online giving (Stripe). Without STRIPE_SECRET_KEY the donate page says it is off.
    "STRIPE_SECRET_KEY": None,  # nosec B105  # no default: None means "not set"
    "STRIPE_WEBHOOK_SECRET": None,  # nosec B105  # no default: None means "not set"
    "STRIPE_API_BASE": "https://api.stripe.com",
    #: Retries of a failed Stripe API call (the SDK reuses the idempotency key).
    "STRIPE_MAX_NETWORK_RETRIES": 2,
    #: Refund at once money that arrives and is rejected by the policy; else hold it for review.
    "STRIPE_AUTO_REFUND": False,
    #: Where Checkout sends the donor back; None: this site's /donate/thanks and /donate/cancelled.
    "DONATION_SUCCESS_URL": None,
    "DONATION_CANCEL_URL": None,
    #: Currencies offered on the donate page (those with a preview rate, or the reporting one).
    "DONATION_CURRENCIES": "USD,EUR,GBP,JPY",
    #: Indicative rates (reporting-currency units per unit) used only to screen a gift before
    #: payment; the recorded gift uses the amount Stripe settled. "" disables the defaults.
    "DONATION_PREVIEW_RATES": None,
    #: Donation form submissions per client address: "COUNT/SECONDS" (in-process limiter).
    "DONATE_RATE_LIMIT": "10/60",
    # Donor acknowledgements. Without SMTP_HOST and MAIL_FROM nothing is e-mailed (the
    # letters can still be viewed and downloaded as PDF).
    "SMTP_HOST": None,
    "SMTP_PORT": 587,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,  # nosec B105  # no default: None means "not set"
    #: STARTTLS before sending (port 465: TLS from the start). Credentials are never sent
    #: over a connection without TLS.
    "SMTP_USE_TLS": True,
    "MAIL_FROM": None,
    #: Printed on acknowledgements when set: the organisation's postal address and its
    #: employer identification number (EIN).
    "ORG_ADDRESS": None,
    "ORG_EIN": None,
    #: What the organisation is, one or two sentences for the public home page.
    "ORG_DESCRIPTION": ("We test frontier AI systems for dangerous capabilities, and we stay "
                        "independent of the labs whose models we evaluate."),
    #: Where the public writes to (donate pages' "contact us", the home page), if set.
    "ORG_CONTACT_EMAIL": None,
    #: A PNG or JPEG file printed at the top of letters' PDFs (the letterhead), if set.
    "ORG_LOGO_FILE": None,
    # Signed audit checkpoints (app.ledger.signing, docs/verify.md). The Ed25519 private key:
    # a PEM file, or the PEM text (or raw key in hex) in the environment; never the database.
    "AUDIT_SIGNING_KEY_FILE": None,
    "AUDIT_SIGNING_KEY": None,  # nosec B105  # no default: None means "not set"
    #: Public keys (hex, comma or space separated) whose checkpoints verify, besides the
    #: signing key's own: the old keys after a rotation.
    "AUDIT_TRUSTED_KEYS": None,
    # The key of the keyed row seals (app.ledger.seal_key): HMAC over donors' names, e-mails
    # and matching keys and staff password hashes. A file, or the text; never the database.
    # Required in production; development and tests fall back to a public development key.
    "AUDIT_SEAL_KEY_FILE": None,
    "AUDIT_SEAL_KEY": None,  # nosec B105  # no default: None means "not set"
    # Background jobs (app/jobs, docs/deployment.md). The folder for jobs' files (uploaded
    # CSVs while they are imported, finished exports) and, without REDIS_URL, the queue's
    # SQLite file: never under app/static. None: jobs/ in the instance folder. The web
    # processes and the worker must all reach the same folder.
    "JOBS_DIR": None,
    #: Set, the job queue is kept in Redis (redis://...) instead of JOBS_DIR/queue.sqlite3.
    "REDIS_URL": None,
}

BOOLEAN = {"TESTING", "REQUIRE_SECOND_FACTOR", "STRIPE_AUTO_REFUND", "SMTP_USE_TLS"}
INTEGER = {"MAX_CONTENT_LENGTH", "API_MAX_CONTENT_LENGTH", "MAX_GIFT_MINOR", "TRUSTED_PROXIES",
           "STRIPE_MAX_NETWORK_RETRIES", "SMTP_PORT"}
ENVIRONMENTS = ("development", "production")
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

    if not settings["JOBS_DIR"]:
        settings["JOBS_DIR"] = str(Path(instance_path) / "jobs")
    static = (Path(__file__).parent / "static").resolve()
    if Path(settings["JOBS_DIR"]).resolve().is_relative_to(static):
        # Anything under app/static is served to anyone: uploads and exports are not public.
        raise ConfigError("JOBS_DIR must not be under app/static (its files would be public)")

    if settings["ARMSLENGTH_ENV"] not in ENVIRONMENTS:
        # A typo ("prod") must not quietly run a deployment in development mode.
        raise ConfigError(f"ARMSLENGTH_ENV must be one of: {', '.join(ENVIRONMENTS)}")
    production = settings["ARMSLENGTH_ENV"] == "production"
    secret = settings["SECRET_KEY"]
    if production and (not secret or str(secret).lower() in WEAK_SECRETS or len(str(secret)) < 32):
        raise ConfigError("SECRET_KEY must be set to a random value of 32+ characters in production")
    if production and settings["STRIPE_SECRET_KEY"] and not settings["STRIPE_WEBHOOK_SECRET"]:
        # Without it no payment event can be verified, so no online gift would be recorded.
        raise ConfigError("STRIPE_WEBHOOK_SECRET must be set when STRIPE_SECRET_KEY is")
    if production and not (settings["AUDIT_SEAL_KEY_FILE"] or settings["AUDIT_SEAL_KEY"]):
        # With the public development key, anyone holding a copy of the audit chain could
        # test guesses of donors' names and e-mails against their seals.
        raise ConfigError("AUDIT_SEAL_KEY_FILE (or AUDIT_SEAL_KEY) must be set in production: "
                          "the key of the audit chain's keyed row seals (docs/deployment.md)")
    if settings["REQUIRE_SECOND_FACTOR"] is None:
        settings["REQUIRE_SECOND_FACTOR"] = production
    elif production and not settings["REQUIRE_SECOND_FACTOR"]:
        # One stolen password must not make its holder one of the two persons.
        raise ConfigError("REQUIRE_SECOND_FACTOR cannot be off in production")
    if not secret:
        # Development only: a fresh random key per process; sessions end on restart.
        settings["SECRET_KEY"] = secrets.token_hex(32)
    settings["REPORTING_CURRENCY"] = str(settings["REPORTING_CURRENCY"]).upper()
    maximum = settings["MAX_GIFT_MINOR"]
    if isinstance(maximum, bool) or not isinstance(maximum, int) \
            or not 1 <= maximum <= GIFT_CEILING_MINOR:
        raise ConfigError(
            f"MAX_GIFT_MINOR must be a whole number of minor units from 1 to "
            f"{GIFT_CEILING_MINOR}; got {maximum!r}")
    return settings
