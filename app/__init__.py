"""Arm's Length: the Flask application factory."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException, default_exceptions

from app.config import load_settings
from app.db import close_session, discard, get_session, make_engine, session_factory
from app.extensions import State
from app.http_errors import ANSWERED, answer_for
from app.ledger.letter_format import locale_of
from app.ledger.policy_store import PolicyCache
from policies import DEFAULT_POLICY_FILE, load_policy

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def resource_dir(name: str) -> Path:
    """templates/ or migrations/: inside the package when installed from a wheel (setup.py
    maps them there), at the repository's top level in a checkout or editable install."""
    bundled = PACKAGE / name
    return bundled if bundled.is_dir() else ROOT / name

csrf = CSRFProtect()


def audit_keys_from(app: Flask):
    """The audit signing key and trusted keys the settings name (app.ledger.signing). An
    unreadable key stops the app; a production app without one warns, and refuses to
    publish a disclosure (docs/verify.md)."""
    from app.config import ConfigError
    from app.ledger.signing import SigningKeyError, load_keys

    try:
        keys = load_keys(app.config)
    except SigningKeyError as error:
        raise ConfigError(str(error)) from error
    if keys.signer is None and app.config["ARMSLENGTH_ENV"] == "production":
        app.logger.warning("no audit signing key (AUDIT_SIGNING_KEY_FILE): audit checkpoints "
                           "cannot be signed and disclosures cannot be published")
    return keys


def _install_seal_key(app: Flask) -> None:
    """The key of the keyed row seals (app.ledger.seal_key), for this process. An unreadable
    or short key stops the app (production without one was refused by load_settings)."""
    from app.config import ConfigError
    from app.ledger import seal_key

    try:
        seal_key.configure(seal_key.load(app.config))
    except seal_key.SealKeyError as error:
        raise ConfigError(str(error)) from error


def _install_jobs(app: Flask) -> None:
    """The background job queue (app/jobs) and the kinds of job this app runs."""
    from app.jobs import exports, imports  # noqa: F401  (registers the job kinds)
    from app.jobs.queue import install

    install(app)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        static_folder=str(PACKAGE / "static"),
        instance_path=str(Path.cwd() / "instance"),
    )
    app.config.update(load_settings(config, app.instance_path))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["ARMSLENGTH_ENV"] == "production",
        JSON_SORT_KEYS=False,
    )

    engine = make_engine(app.config["DATABASE_URL"])
    policy_path = Path(app.config["POLICY_FILE"] or DEFAULT_POLICY_FILE)
    policy = load_policy(policy_path)
    timezone = ZoneInfo(app.config["ORG_TIMEZONE"])
    locale_of(app.config["ORG_LOCALE"])  # an unknown locale stops the start, not a letter
    app.extensions["armslength"] = State(
        engine=engine,
        sessions=session_factory(engine, timezone),
        policy=policy,
        policies=PolicyCache(policy, policy_path.read_text(encoding="utf-8")),
        reporting_currency=app.config["REPORTING_CURRENCY"],
        timezone=timezone,
        max_gift_minor=app.config["MAX_GIFT_MINOR"],
    )
    app.extensions["audit_keys"] = audit_keys_from(app)
    _install_seal_key(app)
    _install_jobs(app)
    app.teardown_request(close_session)  # each request ends its own session
    app.teardown_appcontext(close_session)

    from app import request_checks

    request_checks.register(app)  # first: the body limit must be set before anything reads it
    csrf.init_app(app)
    _register_blueprints(app)
    _register_errors(app)
    _security_headers(app)

    from app.cli import register_commands

    register_commands(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from app.api import bp as api_bp
    from app.web import register_web

    csrf.exempt(api_bp)  # bearer tokens, not cookies: no CSRF exposure
    app.register_blueprint(api_bp)
    from app.payments import connect_ledger_signals
    from app.payments.webhooks import bp as webhooks_bp
    from app.payments.webhooks import stripe_webhook

    csrf.exempt(stripe_webhook)  # Stripe signs each request; the signature is checked instead
    app.register_blueprint(webhooks_bp)
    connect_ledger_signals()
    register_web(app)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if request.path.startswith("/api/"):
            # Keep the error's own headers (Allow on a 405), but answer in JSON.
            headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
            return jsonify({"error": error.description or error.name}), error.code, headers
        if error.code is None or error.code < 400:
            return error
        # A styled page with the way back, instead of Werkzeug's bare one.
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return render_template("error.html", error=error), error.code, headers

    def _answered(error: Exception):
        """A refusal with its answer in app.http_errors: JSON for the API, a page otherwise."""
        answer = answer_for(error)
        api = request.path.startswith("/api/")
        if answer.rollback or not api:
            discard(get_session())
            app.logger.warning("%s on %s: %s", answer.status, request.path, error)
        if api:
            return jsonify(answer.body), answer.status, answer.headers
        status = answer.page_status or answer.status
        page_error = default_exceptions[status](answer.message)
        return render_template("error.html", error=page_error), status, answer.headers

    for error_class in ANSWERED:
        app.register_error_handler(error_class, _answered)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # Never leave a half-done transaction behind a failed request.
        discard(get_session())
        app.logger.exception("unhandled error")
        if request.path.startswith("/api/"):
            return jsonify({"error": "internal error"}), 500
        return render_template("error.html", error=None), 500


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        )
        if app.config["ARMSLENGTH_ENV"] == "production":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
