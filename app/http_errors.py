"""Which HTTP answer each refusal gets: one table for the JSON API and the pages.

The API answers with `ErrorAnswer.body` as JSON (its shapes and codes are the public
contract in docs/api.md); a page shows `ErrorAnswer.message` (on the form, in a flash, or
on the error page) with the same status code. A view that can say more (which field, what
was not saved) catches the error itself, but takes its status and wording from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import DataError, OperationalError

from app.errors import (
    CommitUncertain,
    Duplicate,
    LedgerBusy,
    NotAllowed,
    NotFound,
    ProbablySamePerson,
    RowRefused,
    StillRunning,
    StripeChangedNotRecorded,
    StripeRefused,
    StripeUnreachable,
    UnstorableInput,
    ValidationFailed,
)
from models import IllegalTransition

#: The wording for a page when the ledger lock could not be taken in time.
BUSY_MESSAGE = ("The ledger is busy with another change. Nothing was saved; "
                "please try again in a moment.")
#: The wording for a page when the commit's outcome is unknown (see _uncertain).
UNCERTAIN_MESSAGE = ("The connection to the database was lost while saving: the change may "
                     "or may not have been saved. Check before trying again.")
#: The wording for a page when a value could not be stored (see _out_of_range).
OUT_OF_RANGE_MESSAGE = ("A number or date is out of range, or text contains characters that "
                        "cannot be stored. Nothing was saved.")


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    #: The JSON API's body.
    body: dict
    #: What a page shows.
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    #: The session's transaction is unusable (a database error) or must not be kept.
    rollback: bool = False
    #: A page's status when it differs from the API's (bad input: 400 on a page, 422 on the API).
    page_status: int | None = None


def _invalid(error: ValidationFailed) -> ErrorAnswer:
    return ErrorAnswer(422, {"error": "invalid input", "errors": error.errors}, str(error))


def _plain(status: int) -> Callable[[Exception], ErrorAnswer]:
    return lambda error: ErrorAnswer(status, {"error": str(error)}, str(error))


def _duplicate(error: Duplicate) -> ErrorAnswer:
    return ErrorAnswer(409, {"error": str(error), "field": error.field,
                             "existing_id": error.existing_id}, str(error))


def _same_person(error: ProbablySamePerson) -> ErrorAnswer:
    """Duplicate's body, plus existing_donor_id: the record to look at (or merge into)."""
    answer = _duplicate(error)
    return ErrorAnswer(409, {**answer.body, "existing_donor_id": error.existing_id},
                       answer.message)


def _busy(error: Exception) -> ErrorAnswer:
    # Also a bare OperationalError: a lock or statement timeout from the database is
    # retryable, not a crash.
    return ErrorAnswer(503, {"error": "the ledger is busy; retry shortly"}, BUSY_MESSAGE,
                       {"Retry-After": "1"}, rollback=True)


def _still_running(error: StillRunning) -> ErrorAnswer:
    return ErrorAnswer(409, {"error": "a request with this Idempotency-Key is still being "
                                      "processed; retry shortly to get its response"},
                       str(error), {"Retry-After": "1"})


def _uncertain(error: CommitUncertain) -> ErrorAnswer:
    """Not a 503: that says nothing was saved, and this may have been."""
    return ErrorAnswer(500, {"error": "the outcome is unknown: the database connection was "
                                      "lost while committing. Retry with the same "
                                      "Idempotency-Key, or check before sending it again"},
                       UNCERTAIN_MESSAGE, rollback=True)


def _out_of_range(error: Exception) -> ErrorAnswer:
    """A value the database cannot store or a date beyond the calendar: bad input, not a 500."""
    return ErrorAnswer(422, {"error": "invalid input", "errors": {"request": [
        "a number or date in the request is out of range, "
        "or text contains characters that cannot be stored"]}},
        OUT_OF_RANGE_MESSAGE, rollback=True, page_status=400)


def _unstorable(error: UnstorableInput) -> ErrorAnswer:
    """A NUL character or a too deeply nested body, refused before any view (app.request_checks)."""
    return ErrorAnswer(422, {"error": "invalid input", "errors": {error.field: [error.message]}},
                       f"{error.field}: {error.message}.", page_status=400)


def _row_refused(error: RowRefused) -> ErrorAnswer:
    return answer_for(error.error)


#: Error class -> its answer. Looked up along each class's MRO, most specific first.
ANSWERS: dict[type[Exception], Callable] = {
    ValidationFailed: _invalid,
    NotFound: _plain(404),
    Duplicate: _duplicate,
    ProbablySamePerson: _same_person,
    NotAllowed: _plain(409),
    IllegalTransition: _plain(409),
    LedgerBusy: _busy,
    OperationalError: _busy,
    DataError: _out_of_range,
    OverflowError: _out_of_range,
    RowRefused: _row_refused,
    UnstorableInput: _unstorable,
    StillRunning: _still_running,
    CommitUncertain: _uncertain,
    # Stripe said no (409: the subscription's state forbids it) or could not be asked (502);
    # either way nothing changed here.
    StripeRefused: _plain(409),
    StripeUnreachable: _plain(502),
    # Stripe changed it, recording here failed: 500, and the message says the change is made.
    StripeChangedNotRecorded: _plain(500),
}

#: The classes that have an answer, for `except ANSWERED as error:`.
ANSWERED = tuple(ANSWERS)


def answer_for(error: Exception) -> ErrorAnswer:
    """The answer for an error of one of the ANSWERED classes."""
    for cls in type(error).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls](error)
    raise TypeError(f"no HTTP answer for {type(error).__name__}") from error
