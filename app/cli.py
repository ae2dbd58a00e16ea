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
        policies = state().policies
        if register_file_policy(session, policies, CLI_ACTOR):
            click.echo(f"policy version {state().policy.version} is now in force")
        else:
            in_force = policies.current(session).version
            session.rollback()
            if in_force != policies.fallback.version:
                click.echo(f"note: the policy file's version {policies.fallback.version} is "
                           f"not in force; version {in_force} is. A new version comes into "
                           "force only when proposed on Staff > Admin > Policy and approved "
                           "by a second person.")


def _fail(error: Exception) -> None:
    if isinstance(error, ValidationFailed):
        for field, messages in error.errors.items():
            click.echo(f"error: {field}: {'; '.join(messages)}", err=True)
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(1)


def register_commands(app: Flask) -> None:
    from app.jobs import commands as job_commands

    job_commands.register(app)

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

    @app.cli.command("public-support")
    @click.option("--year", type=int, default=None,
                  help="tax year (default: last calendar year)")
    @click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
    def public_support_command(year: int | None, as_json: bool):
        """The public-support test (Form 990 Schedule A, Part II) for a tax year."""
        from app.presenters.public_support import public_support_data, summary_lines

        st = state()
        with _session() as session:
            data = public_support_data(session, year or st.today().year - 1,
                                       st.reporting_currency)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        for line in summary_lines(data):
            click.echo(line)

    @app.cli.command("year-end-statements")
    @click.option("--year", type=int, required=True, help="the calendar year (YYYY)")
    @click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
                  help="the PDF file to write (every donor's statement, for print)")
    def year_end_statements_command(year: int, out: str):
        """Every donor's annual giving statement for a year, as one PDF for print."""
        from app.ledger.acknowledgements import Organisation
        from app.year_end import year_end_pdf

        if not 1900 <= year <= 9000:
            _fail(ValueError("--year must be a year such as 2026"))
        st = state()
        counted = {"donors": 0}

        def progress(done: int, total: int) -> None:
            counted["donors"] = done
            if done == total or done % 500 == 0:
                click.echo(f"{done}/{total} donors", err=True)

        with _session() as session:
            data = year_end_pdf(session, year, Organisation.from_settings(app.config),
                                st.today(), progress)
        with open(out, "wb") as file:
            file.write(data)
        click.echo(f"wrote {out}: statements for {year} ({counted['donors']} donor(s) read)")

    @app.cli.command("verify-audit")
    @click.option("--checkpoints", "checkpoint_files", type=click.File("r"), multiple=True,
                  help="checkpoints kept outside the database: the lines `audit-checkpoint "
                       "--json` printed, or a signed disclosure (repeatable)")
    def verify_audit_command(checkpoint_files):
        """Verify the audit trail: its hash chain end to end, the chain against every signed
        checkpoint, and each published disclosure against its audit entry and checkpoint."""
        from app.extensions import audit_keys
        from app.ledger.checkpoints import checkpoints_in_file, describe
        from app.ledger.verification import verify_audit

        external = []
        for handle in checkpoint_files:
            try:
                external += checkpoints_in_file(handle.read())
            except ValueError as error:
                _fail(ValueError(f"{handle.name}: {error}"))
        with _session() as session:
            result = verify_audit(session, audit_keys(), external)
        report, cps = result.chain, result.checkpoints
        if result.ok:
            click.echo(f"audit chain intact: {report.entries} entries")
            if cps.count:
                click.echo(f"checkpoints: {cps.count} verified; the newest, #{cps.latest.id}, "
                           f"covers {cps.latest.length} entries ({cps.entries_after_latest} since)")
            if external:
                click.echo(f"checkpoints kept outside the database: {len(external)} verified")
            if result.disclosures:
                unsigned = sum(1 for d in result.disclosures if d.unsigned)
                click.echo(f"published disclosures: {len(result.disclosures)} match their audit "
                           f"entries ({unsigned} without a signed checkpoint)")
            for line in result.row_lines() + result.derived_lines():
                click.echo(line)
            return
        if not report.ok:
            click.echo(f"audit chain BROKEN at entry {report.broken_at}: {report.problem} "
                       f"({report.entries} entries verified before it)", err=True)
        else:
            click.echo(f"audit trail FAILS verification: its {report.entries} entries link up, "
                       "but:", err=True)
        if not cps.ok:
            click.echo(f"checkpoints FAIL from checkpoint #{cps.broken_at} on "
                       "(nothing from its entry on can be trusted):", err=True)
            for f in cps.failures:
                click.echo(f"  {describe(f)}", err=True)
        for d in result.disclosure_failures:
            click.echo(f"  {d.problem}", err=True)
        for line in result.row_lines():
            click.echo(line, err=not result.rows.ok)
        for line in result.derived_lines():
            click.echo(line, err=not result.derived.ok)
        sys.exit(1)

    @app.cli.command("audit-checkpoint")
    @click.option("--json", "as_json", is_flag=True,
                  help="print the signed checkpoint as one line of JSON instead, to keep "
                       "outside the database (verify-audit --checkpoints reads it back)")
    def audit_checkpoint_command(as_json: bool):
        """Sign the audit chain's length and head (AUDIT_SIGNING_KEY_FILE); run it daily."""
        from app.db.locking import ledger_write
        from app.extensions import audit_keys
        from app.ledger import checkpoints
        from app.ledger.verification import verify_audit

        keys = audit_keys()
        if keys.signer is None:
            _fail(ValueError("no audit signing key is configured: set AUDIT_SIGNING_KEY_FILE "
                             "(armslength audit-keygen PATH makes one)"))
        with _session() as session:
            # Never sign a chain that already fails: that would anchor the tampering.
            result = verify_audit(session, keys)
            if not result.ok:
                _fail(ValueError(f"the audit trail fails verification, nothing was signed: "
                                 f"{result.problem}"))
            try:
                with ledger_write(session):
                    cp = checkpoints.take(session, keys)
            except LedgerError as error:
                _fail(error)
            if as_json:
                click.echo(json.dumps(checkpoints.checkpoint_json(cp), ensure_ascii=False))
                return
            click.echo(f"checkpoint #{cp.id}: {cp.length} entries, head {cp.head}, "
                       f"signed {cp.signed_at.isoformat(timespec='seconds')} by key {cp.key_id}")

    @app.cli.command("audit-keygen")
    @click.argument("path", type=click.Path(dir_okay=False))
    def audit_keygen_command(path: str):
        """Write a new Ed25519 audit signing key to PATH (mode 0600, never overwritten)."""
        from pathlib import Path

        from app.ledger.signing import generate_key_file, key_id

        try:
            public = generate_key_file(Path(path))
        except FileExistsError:
            _fail(ValueError(f"{path} exists; a key file is never overwritten"))
        except OSError as error:
            _fail(ValueError(f"{path}: {error.strerror}"))
        click.echo(f"signing key written to {path} (readable by its owner only)")
        click.echo(f"key id:     {key_id(public)}")
        click.echo(f"public key: {public}")
        click.echo("Set AUDIT_SIGNING_KEY_FILE to its path; publish the public key. After a "
                   "rotation, list the old public key in AUDIT_TRUSTED_KEYS.")

    @app.cli.command("audit-seal-keygen")
    @click.argument("path", type=click.Path(dir_okay=False))
    def audit_seal_keygen_command(path: str):
        """Write a new key for the audit chain's keyed row seals to PATH (mode 0600, never
        overwritten): set AUDIT_SEAL_KEY_FILE to it (docs/deployment.md)."""
        from pathlib import Path

        from app.ledger.seal_key import generate_key_file

        try:
            generate_key_file(Path(path))
        except FileExistsError:
            _fail(ValueError(f"{path} exists; a key file is never overwritten"))
        except OSError as error:
            _fail(ValueError(f"{path}: {error.strerror}"))
        click.echo(f"seal key written to {path} (readable by its owner only). Set "
                   "AUDIT_SEAL_KEY_FILE to its path for every worker and command; keep a copy "
                   "offline: without it the keyed seals cannot be checked.")

    @app.cli.command("audit-seal-rotate")
    @click.option("--new-key-file", type=click.Path(dir_okay=False), default=None,
                  help="the new key (from audit-seal-keygen); else AUDIT_SEAL_NEW_KEY_FILE or "
                       "AUDIT_SEAL_NEW_KEY")
    @click.option("--old-key-file", type=click.Path(dir_okay=False), default=None,
                  help="the key in use; else the app's own (AUDIT_SEAL_KEY_FILE or "
                       "AUDIT_SEAL_KEY)")
    def audit_seal_rotate_command(new_key_file: str | None, old_key_file: str | None):
        """Re-seal every keyed row seal under a new key, in one audited step (docs/verify.md).
        Every keyed seal must hold under the old key first: if one does not, nothing is
        written and the rows are listed (exit status 1). Stop the app's workers first, and
        start them again with AUDIT_SEAL_KEY_FILE set to the new key."""
        import os

        from app.ledger import seal_key
        from app.ledger.seal_rotation import rotate_seal_key

        try:
            new = seal_key.load({
                "AUDIT_SEAL_KEY_FILE": new_key_file or os.environ.get("AUDIT_SEAL_NEW_KEY_FILE"),
                "AUDIT_SEAL_KEY": None if new_key_file else os.environ.get("AUDIT_SEAL_NEW_KEY")})
            old = (seal_key.load({"AUDIT_SEAL_KEY_FILE": old_key_file}) if old_key_file
                   else seal_key.load(app.config))
        except seal_key.SealKeyError as error:
            _fail(error)
        if new is None:
            _fail(ValueError("no new key: give --new-key-file (or AUDIT_SEAL_NEW_KEY_FILE)"))
        if old is None:
            _fail(ValueError("no key in use is configured (AUDIT_SEAL_KEY_FILE): the seals "
                             "are the development key's; give --old-key-file to rotate anyway"))
        if old == new:
            _fail(ValueError("the new key is the key in use"))
        with _session() as session:
            result = rotate_seal_key(session, old, new, CLI_ACTOR)
        if result.refused:
            click.echo(f"not rotated: {len(result.refused)} keyed seals do not hold under the "
                       "old key (nothing was written):", err=True)
            for name, row_id, why in result.refused[:1000]:
                click.echo(f"  {name} {row_id}: {why}", err=True)
            raise SystemExit(1)
        seal_key.configure(new)
        click.echo(f"re-sealed {result.resealed} keyed seals under key {seal_key.key_id(new)} "
                   f"(was {seal_key.key_id(old)}). Set AUDIT_SEAL_KEY_FILE to the new key for "
                   "every worker and command now; keep the old key offline.")

    @app.cli.command("verify-disclosure")
    @click.argument("file", type=click.File("rb"))
    @click.option("--public-key", "public_key_file", type=click.File("r"), default=None,
                  help="the organisation's public key (64 hex digits or PEM) to trust")
    def verify_disclosure_command(file, public_key_file):
        """Check a signed disclosure (/disclosures/{id}.signed.json) offline: its content
        hash and its checkpoint's signature. Needs no database."""
        _verify_signed_file(file, public_key_file, "disclosure", "disclosure_id")

    @app.cli.command("verify-funding-report")
    @click.argument("file", type=click.File("rb"))
    @click.option("--public-key", "public_key_file", type=click.File("r"), default=None,
                  help="the organisation's public key (64 hex digits or PEM) to trust")
    def verify_funding_report_command(file, public_key_file):
        """Check a signed funding page (/funding/{id}.signed.json) offline, as
        verify-disclosure checks a disclosure. Needs no database."""
        from app.ledger.checkpoints import FUNDING_BUNDLE_FORMAT

        _verify_signed_file(file, public_key_file, "funding page", "funding_report_id",
                            bundle_format=FUNDING_BUNDLE_FORMAT)

    @app.cli.command("seal-rows")
    def seal_rows_command():
        """Record in the audit trail the rows that an upgrade which sealed their table found
        already there (up to the largest id it recorded). Any other row with no audit entry
        is listed, not sealed (exit status 1); rows that differ from their entry stay findings."""
        from app.ledger.row_sealing import seal_unsealed_rows

        with _session() as session:
            result = seal_unsealed_rows(session, CLI_ACTOR)
        click.echo(f"sealed {result.sealed} rows that had no audit entry")
        if result.refused:
            click.echo(f"not sealed: {len(result.refused)} rows with no audit entry that no "
                       "upgrade found (they stay findings of verify-audit):", err=True)
            for table, row_id, why in result.refused[:1000]:
                click.echo(f"  {table} {row_id}: {why}", err=True)
            raise SystemExit(1)


    @app.cli.command("purge-idempotency-keys")
    def purge_idempotency_keys_command():
        """Delete the API's idempotency keys kept longer than 24 hours (for a scheduled job;
        the server also purges them now and then)."""
        from app.api.idempotency import purge_all_expired

        click.echo(f"purged {purge_all_expired()} expired idempotency keys")


def main() -> None:
    from app import create_app

    cli = FlaskGroup(create_app=create_app, help="Arm's Length: fundraising and donor compliance.")
    cli.main(prog_name="armslength")


def _verify_signed_file(file, public_key_file, what: str, id_key: str,
                        bundle_format: str | None = None) -> None:
    """verify-disclosure and verify-funding-report: a signed bundle's content hash and its
    checkpoint's signature, offline, under --public-key or the key inside the file."""
    from app.ledger.checkpoints import verify_bundle
    from app.ledger.signing import SigningKeyError, parse_public_key

    try:
        bundle = json.loads(file.read())
        if not isinstance(bundle, dict):
            raise ValueError("not a JSON object")
        if bundle_format is not None and bundle.get("format") != bundle_format:
            raise ValueError(f"not a JSON object of format {bundle_format!r}")
    except ValueError as error:
        _fail(ValueError(f"{file.name}: not a signed {what} file ({error})"))
    trusted = None
    if public_key_file is not None:
        try:
            trusted = parse_public_key(public_key_file.read())
        except SigningKeyError as error:
            _fail(ValueError(f"{public_key_file.name}: {error}"))
    problems = verify_bundle(bundle, trusted)
    if problems:
        click.echo(f"{what} NOT verified ({file.name}):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    cp = bundle["checkpoint"]
    click.echo(f"{what} {bundle.get(id_key)} verified: content SHA-256 "
               f"{bundle['content_hash']}, signed in checkpoint #{cp.get('id')} "
               f"(audit entry {cp['length']}, head {cp['head']}, signed {cp['signed_at']}) "
               f"by key {cp['key_id']}")
    if trusted is None:
        click.echo(f"note: checked under the public key inside the file (key id "
                   f"{cp['key_id']}); compare it with the key the organisation publishes, "
                   "or pass --public-key")
