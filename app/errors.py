"""Errors the ledger services raise; the API and views map them to responses."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class."""


class ValidationFailed(LedgerError):
    """Bad input that passed shape checks but not the ledger's (unknown donor, excess refund)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class NotFound(LedgerError):
    def __init__(self, what: str, ident: object):
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class Duplicate(LedgerError):
    """An external id that is already recorded; carries the existing record's id."""

    def __init__(self, field: str, existing_id: int):
        super().__init__(f"{field} already recorded on id {existing_id}")
        self.field = field
        self.existing_id = existing_id


class ProbablySamePerson(Duplicate):
    """A new person donor whose normalised e-mail address is already a donor's: probably the
    same person (issue 11). A reviewer may confirm a different person and create it anyway."""

    def __init__(self, existing_id: int, existing_name: str):
        LedgerError.__init__(
            self, f"a donor with this e-mail address is already recorded: this is probably "
                  f"{existing_name} (donor {existing_id})")
        self.field = "email"
        self.existing_id = existing_id
        self.existing_name = existing_name


class NotAllowed(LedgerError):
    """A legal request the ledger refuses in the record's current state."""


class SigningUnavailable(NotAllowed):
    """A signed audit checkpoint is required (publishing in production) and no signing key
    is configured (AUDIT_SIGNING_KEY_FILE / AUDIT_SIGNING_KEY)."""


class LedgerBusy(LedgerError):
    """The database could not take the ledger lock in time; the caller may retry."""


class RowRefused(LedgerError):
    """One of many rows written together was refused; `tag` is what the caller passed with
    that row (an import's line number), `error` the reason."""

    def __init__(self, tag: object, error: LedgerError):
        super().__init__(str(error))
        self.tag = tag
        self.error = error


class UnstorableInput(Exception):
    """A request value no column can hold (a NUL character) or a body nested too deeply:
    bad input, refused before any view reads it. `field` names where it was found."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StillRunning(LedgerError):
    """Another request with the same idempotency key is still being processed."""


class CommitUncertain(LedgerError):
    """The database connection failed while committing: the write may or may not have
    been committed, so the caller must not be told that nothing was saved."""


class StripeRefused(LedgerError):
    """Stripe answered a change (pause, new amount, cancel) with an error: nothing changed
    here. The message is Stripe's."""


class StripeUnreachable(LedgerError):
    """Stripe could not be reached (or is not configured) for a change: nothing changed here."""


class StripeChangedNotRecorded(LedgerError):
    """Stripe made a change (pause, new amount, cancel) but recording its answer here failed.
    The request and who made it are in the audit trail already; Stripe's notification of the
    change brings the new state. Not "retry": the change is made."""
