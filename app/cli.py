"""Command-line interface: `flask --app app <command>` or `armslength <command>`."""

from __future__ import annotations

import json
import sys
from datetime import date

import click
from flask import Flask
from flask.cli import FlaskGroup
from pydantic import ValidationError

from app import resource_dir
from app.errors import LedgerError, NotFound, ValidationFailed
from app.extensions import state
from app.ledger.audit import Actor
from models.schemas import UserCreate, field_errors

CLI_ACTOR = Actor("cli", role="admin")
MIGRATIONS = resource_dir("migrations")


def _session():
    return state().sessions()


def upgrade_schema(app: Flask) -> None:
    """Apply Alembic migrations up to head, then make sure the ledger lock row exists."""
    from alembic import command
    from alembic.config import Config

    from app.db.locking import ensure_lock_row
    from app.ledger.policy_store import register_file_policy

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = state().engine
    command.upgrade(config, "head")
    with _session() as session:
        ensure_lock_row(session)
        if register_file_policy(session, state().policies, CLI_ACTOR):
            click.echo(f"policy version {state().policy.version} is now in force")


def _fail(error: Exception) -> None:
    if isinstance(error, ValidationFailed):
        for field, messages in error.errors.items():
            click.echo(f"error: {field}: {'; '.join(messages)}", err=True)
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(1)


def register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Create the schema, or upgrade it to the latest migration."""
        upgrade_schema(app)
        click.echo("database ready")

    @app.cli.command("demo-data")
    @click.option("--seed", default=7, show_default=True, help="random seed")
    def demo_data(seed: int):
        """Fill an empty database with a realistic demo ledger."""
        from app.demo import load_demo

        if app.config["ARMSLENGTH_ENV"] == "production":
            _fail(ValueError("demo-data creates users with a published password; "
                             "it does not run with ARMSLENGTH_ENV=production"))
        upgrade_schema(app)
        with _session() as session:
            try:
                report = load_demo(session, state(), seed=seed)
            except LedgerError as error:
                _fail(error)
        for line in report:
            click.echo(line)

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--role", required=True, type=click.Choice(
        ["viewer", "fundraiser", "reviewer", "finance", "admin"]))
    @click.option("--password", required=True, help="at least 12 characters")
    def create_user_command(email: str, role: str, password: str):
        """Create a staff user."""
        from app.auth.users import create_user

        try:
            data = UserCreate(email=email, role=role, password=password)
        except ValidationError as error:
            _fail(ValidationFailed(field_errors(error)))
        with _session() as session:
            try:
                user = create_user(session, data, CLI_ACTOR)
            except LedgerError as error:
                _fail(error)
            click.echo(f"created user {user.id} {user.email} ({user.role})")

    @app.cli.command("reset-password")
    @click.argument("email")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
                  help="the new password (asked for, unseen, when not given)")
    @click.option("--clear-second-factor", is_flag=True,
                  help="also remove the user's second factor (a lost phone); they set up a "
                       "new one at their next sign-in")
    def reset_password_command(email: str, password: str, clear_second_factor: bool):
        """Set a staff user's password (for whoever runs the server; ends their sessions)."""
        from sqlalchemy import select

        from app.auth.links import set_password
        from models import User

        with _session() as session:
            user_id = session.execute(
                select(User.id).where(User.email == email.strip().lower())
            ).scalar_one_or_none()
            if user_id is None:
                _fail(NotFound("user", email))
            try:
                set_password(session, user_id, password, CLI_ACTOR,
                             clear_second_factor=clear_second_factor)
            except LedgerError as error:
                _fail(error)
        extra = "; second factor removed" if clear_second_factor else ""
        click.echo(f"password set for {email.strip().lower()}; their sessions have ended{extra}")

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="api", show_default=True)
    def create_token_command(email: str, name: str):
        """Create an API token for a user; the token is the last line printed."""
        from app.auth.users import create_token

        with _session() as session:
            try:
                token = create_token(session, email, CLI_ACTOR, name=name)
            except LedgerError as error:
                _fail(error)
        click.echo(f"API token for {email} (shown once; store it now):")
        click.echo(token)

    @app.cli.command("compliance-summary")
    @click.option("--as-of", "as_of", default=None, help="YYYY-MM-DD (default: today)")
    @click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
    def compliance_summary_command(as_of: str | None, as_json: bool):
        """Lab-employee share, headroom and breach status."""
        from app.ledger.summary import compliance_summary, summary_lines
        from app.presenters.compliance import summary_public

        st = state()
        try:
            day = date.fromisoformat(as_of) if as_of else st.today()
        except ValueError:
            _fail(ValueError("--as-of must be YYYY-MM-DD"))
        with _session() as session:
            result = compliance_summary(session, day, st.policy_for(session), st.reporting_currency)
        if as_json:
            click.echo(json.dumps(summary_public(result), indent=2))
            return
        for line in summary_lines(result):
            click.echo(line)

    @app.cli.command("verify-audit")
    def verify_audit_command():
        """Verify the audit trail's hash chain end to end."""
        from app.ledger.audit import verify_chain

        with _session() as session:
            report = verify_chain(session)
        if report.ok:
            click.echo(f"audit chain intact: {report.entries} entries")
        else:
            click.echo(f"audit chain BROKEN at entry {report.broken_at}: {report.problem} "
                       f"({report.entries} entries verified before it)", err=True)
            sys.exit(1)


def main() -> None:
    from app import create_app

    cli = FlaskGroup(create_app=create_app, help="Arm's Length: fundraising and donor compliance.")
    cli.main(prog_name="armslength")
