"""The year-end batch: every donor's annual giving statement for a year, as one PDF for
print and as an e-mail to each donor with an address. Plain functions with a progress
callback (progress(done, total)), so a background job can run them and show how far they
got; the staff page (app.web.acknowledgements) and the CLI (`armslength year-end-statements`)
call them directly today.

Each e-mail sent is recorded as an acknowledgement (app.ledger.acknowledgements.record_sent,
audited), and a donor whose statement for the year was already sent (by e-mail or post) is
skipped, so running the batch again sends only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session

from app.errors import LedgerBusy
from app.ledger import acknowledgements as ack
from app.ledger.audit import Actor
from app.mail import Attachment, MailError, MailSettings, build_message, send
from app.web.documents import letter_pdf, statements_pdf


def year_end_pdf(session: Session, year: int, organisation: ack.Organisation,
                 letter_date: date, progress: ack.Progress | None = None) -> bytes:
    """Every donor's statement for the year, one PDF, each donor on pages of their own."""
    letters = ack.year_end_letters(session, year, organisation, letter_date, progress)
    return statements_pdf(letters, organisation, year)


@dataclass
class Emailed:
    """What an e-mail run did, by donor id."""

    sent: list[int] = field(default_factory=list)
    #: No e-mail address on the donor's record: post the printed statement instead.
    no_email: list[int] = field(default_factory=list)
    #: A statement for the year was already sent (e-mail or post).
    already_sent: list[int] = field(default_factory=list)
    #: The mail server refused or could not be reached: {donor id: why}.
    failed: dict[int, str] = field(default_factory=dict)


def email_statements(session: Session, year: int, organisation: ack.Organisation,
                     letter_date: date, settings: MailSettings, actor: Actor,
                     progress: ack.Progress | None = None) -> Emailed:
    """E-mail each donor their statement for the year, the PDF attached, and record it."""
    result = Emailed()
    # One donor at a time: progress counts donors whose e-mail was dealt with.
    for letter in ack.year_end_letters(session, year, organisation, letter_date, progress):
        if ack.sent_for_year(session, letter.donor_id, year):
            result.already_sent.append(letter.donor_id)
            continue
        if not letter.donor_email:
            result.no_email.append(letter.donor_id)
            continue
        message = build_message(
            settings.sender, letter.donor_email,
            f"{organisation.name}: your {year} giving statement", ack.letter_text(letter),
            (Attachment(f"giving-statement-{year}-donor-{letter.donor_id}.pdf",
                        letter_pdf(letter)),))
        try:
            send(settings, message)
        except MailError as error:
            result.failed[letter.donor_id] = str(error)
            continue
        try:
            ack.record_sent(session, letter, letter.donor_email, actor)
        except LedgerBusy:
            # The e-mail left; say so rather than lose it (a rerun would send it again).
            result.failed[letter.donor_id] = "e-mailed, but the ledger was busy: not recorded"
            continue
        result.sent.append(letter.donor_id)
    return result
