"""CSV exports for accounting, streamed, spreadsheet-safe, and written to the audit trail."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, ValidationError

from app import jobs
from app.db import get_session
from app.db.locking import ledger_write
from app.extensions import state
from app.ledger import audit
from app.ledger.csv_export import (
    DONOR_HEADER,
    GIFT_HEADER,
    DonorFilters,
    GiftFilters,
    count_donors,
    count_gifts,
    csv_chunks,
    donor_rows,
    gift_rows,
)
from app.web.access import role_required
from models.gifts import GIFT_STATUSES
from models.parties import DONOR_TYPES

bp = Blueprint("exports", __name__, url_prefix="/staff/export")

EXPORTS = "exports"


class DonorExportForm(FlaskForm):
    type = SelectField("Donor type", default="",
                       choices=[SelectChoice("", "all")] + [SelectChoice(t) for t in DONOR_TYPES])


class GiftExportForm(FlaskForm):
    received_from = DateField("Received from", validators=[Optional()])
    received_to = DateField("Received to", validators=[Optional()])
    status = SelectField("Status", default="",
                         choices=[SelectChoice("", "all")] + [SelectChoice(s) for s in GIFT_STATUSES])

    def validate_received_to(self, field):
        if field.data and self.received_from.data and field.data < self.received_from.data:
            raise ValidationError("must not be before the start date")


def _page(donor_form: DonorExportForm, gift_form: GiftExportForm, status: int = 200):
    return render_template("exports/index.html", donor_form=donor_form, gift_form=gift_form,
                           donor_header=DONOR_HEADER, gift_header=GIFT_HEADER), status


@bp.get("/")
@role_required(EXPORTS)
def index():
    return _page(DonorExportForm(prefix="donors"), GiftExportForm(prefix="gifts"))


def _streamed(header, rows):
    """The CSV body. Runs only while the response is sent, inside the request's contexts,
    which stream_with_context pushes again for it: the session is opened here, and the
    teardown at the end of streaming closes it (the view's own session was closed when
    the view returned, before the first row was read)."""
    yield from csv_chunks(header, rows(get_session()))


def _in_background(what: str, filters: dict) -> Response:
    """The same export as a job (app/jobs/exports.py); its page offers the file when ready."""
    given = {name: value.isoformat() if isinstance(value, date) else value
             for name, value in filters.items()}
    job = jobs.enqueue(current_app, get_session(), "export", g.actor,
                       {"what": what, "filters": given})
    return redirect(url_for("jobs.show", job_id=job.id), 303)


def _download(what: str, header, rows, filters: dict, count: int, *,
              name: str | None = None) -> Response:
    session = get_session()
    # Recorded before the first byte is sent: an export that is cut off was still an export.
    with ledger_write(session):
        audit.append(session, g.actor, f"export.{what}", "export", None,
                     {"format": "csv", "filters": filters, "rows_at_request": count})
    filename = f"{name or what}-{state().today().isoformat()}.csv"
    return Response(
        stream_with_context(_streamed(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store"},
    )


@bp.post("/donors.csv")
@role_required(EXPORTS)
def donors():
    form = DonorExportForm(prefix="donors")
    if not form.validate_on_submit():
        return _page(form, GiftExportForm(prefix="gifts", formdata=None), 400)
    session = get_session()
    filters = DonorFilters(type=form.type.data or None)
    if request.form.get("background"):
        return _in_background("donors", filters.as_dict())
    count = count_donors(session, filters)
    return _download("donors", DONOR_HEADER, lambda s: donor_rows(s, filters), filters.as_dict(),
                     count)


@bp.post("/gifts.csv")
@role_required(EXPORTS)
def gifts():
    form = GiftExportForm(prefix="gifts")
    if not form.validate_on_submit():
        return _page(DonorExportForm(prefix="donors", formdata=None), form, 400)
    session = get_session()
    filters = GiftFilters(received_from=form.received_from.data, received_to=form.received_to.data,
                          status=form.status.data or None)
    if request.form.get("background"):
        return _in_background("gifts", filters.as_dict())
    count = count_gifts(session, filters)
    return _download("gifts", GIFT_HEADER, lambda s: gift_rows(s, filters), filters.as_dict(), count)


# --- a staff list as filtered ------------------------------------------------------------------
# The list page's export button posts (with its CSRF token) to the list's own address here:
# the filter travels in the query string exactly as the list read it, so the file holds the
# rows the list shows, all pages of them, and the columns it shows: a fundraiser may take a
# copy of a list, while the ledger export's payment ids, references, rates and e-mail
# addresses stay with "exports" (finance), whatever the filter.

#: What the gifts list shows, with the designation codes it filters by.
GIFT_LIST_COLUMNS = (
    "gift_id", "received_on", "donor_id", "donor_name", "currency", "amount",
    "reporting_currency", "reporting_amount", "kind", "purpose", "status", "refunded",
    "net_amount", "reporting_net", "campaign", "appeal", "fund",
)
#: What the donors list shows.
DONOR_LIST_COLUMNS = ("donor_id", "type", "name", "category", "organization")


def _columns(header, wanted, rows):
    """The wanted columns of a ledger export's rows, in the wanted order."""
    at = [header.index(name) for name in wanted]

    def picked(session):
        for row in rows(session):
            yield [row[i] for i in at]

    return wanted, picked

@bp.post("/gift-list.csv")
@role_required("lists.export")
def gift_list():
    from app.web.gifts import filters_from_args  # noqa: PLC0415 (the gift pages import much)

    currency = state().reporting_currency
    filters = filters_from_args(currency).export(currency)
    session = get_session()
    count = count_gifts(session, filters)
    header, rows = _columns(GIFT_HEADER, GIFT_LIST_COLUMNS, lambda s: gift_rows(s, filters))
    return _download("gift_list", header, rows, filters.as_dict(), count, name="gifts")


@bp.post("/donor-list.csv")
@role_required("lists.export")
def donor_list():
    from app.web.donors import list_filter  # noqa: PLC0415 (the donor pages import much)

    session = get_session()
    conditions, shown = list_filter(session)
    filters = DonorFilters(where=tuple(conditions),
                           described=tuple(sorted(shown["audit"].items())))
    count = count_donors(session, filters)
    header, rows = _columns(DONOR_HEADER, DONOR_LIST_COLUMNS, lambda s: donor_rows(s, filters))
    return _download("donor_list", header, rows, filters.as_dict(), count, name="donors")
