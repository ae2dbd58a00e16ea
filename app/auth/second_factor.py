"""The second factor: time-based one-time codes (TOTP, RFC 6238, through pyotp).

Reviewers and admins are who can approve overrides and enforcement changes, so a stolen
password alone must not be enough to be one of the two persons. When
REQUIRE_SECOND_FACTOR is on (always in production), a reviewer or admin without a second
factor enrols before the sign-in completes; anyone may enrol from their account page.

A code is checked against the current 30-second step and one step either side (clock
drift), and a step once accepted is never accepted again: a code seen over a shoulder or
in a log is useless afterwards. Wrong codes count as failed sign-ins (app.auth.throttle).
"""

from __future__ import annotations

from datetime import datetime

import pyotp
import segno
from sqlalchemy import update
from sqlmodel import Session

from app.auth import throttle
from app.db.locking import ledger_write
from app.errors import ValidationFailed
from app.ledger import audit
from models import User, utcnow

ISSUER = "Arm's Length"
REVIEWING_ROLES = ("reviewer", "admin")
#: Steps either side of now that still count (30 s each): a phone's clock may be off.
DRIFT_STEPS = 1


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


def enrol(session: Session, user_id: int, secret: str, code: str, actor,
          now: datetime | None = None) -> None:
    """Keep the secret as the user's second factor once a code from it proves the user's
    app has it. Raises ValidationFailed for a wrong code. Audited."""
    step = matching_step(secret, code, now)
    if step is None:
        raise ValidationFailed({"code": ["that code is not right"]})
    with ledger_write(session):
        user = session.get(User, user_id)
        replacing = user.totp_secret is not None
        user.totp_secret = secret
        user.totp_last_step = step
        audit.append(session, actor, "user.second_factor_enrolled", "user", user.id,
                     {"email": user.email, "replaced": replacing})
