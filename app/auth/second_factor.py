"""The second factor: time-based one-time codes (TOTP, RFC 6238, through pyotp).

Reviewers and admins are who can approve overrides and enforcement changes, so a stolen
password alone must not be enough to be one of the two persons. When
REQUIRE_SECOND_FACTOR is on (always in production), a reviewer or admin without a second
factor enrols before the sign-in completes; anyone may enrol from their account page.

A code is checked against the current 30-second step and one step either side (clock
drift), and a step once accepted is never accepted again: a code seen over a shoulder or
in a log is useless afterwards. Wrong codes count as failed sign-ins (app.auth.throttle).

A new secret waits on the server (staff_user.totp_pending_secret), never in the session
cookie, which is signed but not encrypted: whoever saw the cookie could read the secret
and make codes. It is shown once, on the page that made it, and can be confirmed for
PENDING_VALID; each visit of that page makes a new one.

Replacing or removing a second factor takes the account's password and a code from the
factor in use (the account page checks both before calling `enrol(..., replace=True)` or
`remove`): a session taken over in a browser cannot swap the factor for the taker's own.
Whoever cannot give a code any more asks the server's operator:
`armslength reset-password EMAIL --clear-second-factor`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
import segno
from sqlalchemy import update
from sqlmodel import Session

from app.auth import throttle
from app.db.locking import ledger_write
from app.errors import NotAllowed, ValidationFailed
from app.ledger import audit
from models import User, utcnow

ISSUER = "Arm's Length"
REVIEWING_ROLES = ("reviewer", "admin")
#: Steps either side of now that still count (30 s each): a phone's clock may be off.
DRIFT_STEPS = 1
#: How long a new secret waits for a code from it.
PENDING_VALID = timedelta(minutes=10)


def required_for(user: User, required: bool) -> bool:
    """Whether this user must have a second factor to sign in."""
    return required and user.role in REVIEWING_ROLES


def new_secret() -> str:
    return pyotp.random_base32()


def enrolment_uri(email: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, for an authenticator app to scan."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#111")


def matching_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step the code belongs to (now ± DRIFT_STEPS), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = now or utcnow()
    current = totp.timecode(now)
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        step = current + offset
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def accept_code(session: Session, user_id: int, secret: str, code: str,
                now: datetime | None = None) -> bool:
    """Check a code for this secret and spend its step, at most once: the update only
    succeeds while the stored last step is older, so two requests with the same code
    cannot both pass (the update is atomic on both databases)."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    engine = session.get_bind()
    session.rollback()
    with throttle.short_write(engine) as conn:
        changed = conn.execute(
            update(User).where(User.id == user_id,
                               (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
            .values(totp_last_step=step)
        ).rowcount
    return changed == 1


def start_enrolment(session: Session, user_id: int, now: datetime | None = None) -> str:
    """A new secret, kept on the server as the user's pending one (any earlier pending one
    stops working); returned once, for the enrolment page to show. A short write of its
    own, outside the ledger lock (OperationalError if the database stays busy)."""
    secret = new_secret()
    engine = session.get_bind()
    session.rollback()  # the request's read is not held during the write
    with throttle.short_write(engine) as conn:
        conn.execute(update(User).where(User.id == user_id).values(
            totp_pending_secret=secret, totp_pending_at=now or utcnow()))
    return secret


def pending_secret(user: User, now: datetime | None = None) -> str | None:
    """The user's pending secret while it may still be confirmed, else None."""
    if user.totp_pending_secret is None or user.totp_pending_at is None:
        return None
    if (now or utcnow()) - user.totp_pending_at > PENDING_VALID:
        return None
    return user.totp_pending_secret


def enrol(session: Session, user_id: int, code: str, actor, now: datetime | None = None,
          *, replace: bool = False) -> None:
    """Make the user's pending secret their second factor once a code from it proves the
    user's app has it. Raises ValidationFailed for a wrong code or no pending secret.
    An account that has a second factor keeps it unless `replace`: only after the caller
    checked the password and a code from the factor in use. Audited."""
    now = now or utcnow()
    with ledger_write(session):
        user = session.get(User, user_id)
        secret = pending_secret(user, now)
        if secret is None:
            raise ValidationFailed({"code": [
                "the key shown for setting up expired or was replaced: start again"]})
        step = matching_step(secret, code, now)
        if step is None:
            raise ValidationFailed({"code": ["that code is not right"]})
        replacing = user.totp_secret is not None
        if replacing and not replace:
            raise NotAllowed("this account has a second factor: replacing it takes the "
                             "password and a code from it")
        user.totp_secret = secret
        user.totp_last_step = step
        user.totp_pending_secret = None
        user.totp_pending_at = None
        audit.append(session, actor, "user.second_factor_enrolled", "user", user.id,
                     {"email": user.email, "replaced": replacing,
                      "confirmed_with": (["password", "code from the replaced factor"]
                                         if replacing else [])}, sealed=[user])


def remove(session: Session, user_id: int, actor, required: bool) -> None:
    """Remove the user's second factor, after the caller checked the password and a code
    from it. Refused when the user must have one (`required`). Audited."""
    if required:
        raise NotAllowed("reviewers and admins must have a second factor: move it to "
                         "another app instead")
    with ledger_write(session):
        user = session.get(User, user_id)
        if user.totp_secret is None:
            raise NotAllowed("this account has no second factor")
        user.totp_secret = None
        user.totp_last_step = None
        user.totp_pending_secret = None
        user.totp_pending_at = None
        audit.append(session, actor, "user.second_factor_removed", "user", user.id,
                     {"email": user.email,
                      "confirmed_with": ["password", "code from the removed factor"]},
                     sealed=[user])
