"""Fundraising reports: donors by year (retained, recaptured, new), retention, LYBUNT and
SYBUNT lists, first-time donors, upgrades and lapses, the gift-size pyramid and giving by
month, with charts and CSV (app.ledger.reports does the arithmetic)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template, request

from app.auth.roles import READ
from app.db import get_session
from app.db.locking import ledger_write
from app.extensions import state
from app.ledger import audit, reports
from app.ledger.csv_export import csv_chunks
from app.web import charts
from app.web.access import role_required
from app.web.segments import segment_arg, segment_choices, segment_donor_ids
from models.money import currency_exponent, format_amount

bp = Blueprint("reports", __name__, url_prefix="/staff/reports")

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Lists that can be downloaded: (title, header).
LISTS = {
    "lybunt": ("LYBUNT: gave last year, not this year",
               ("donor_id", "name", "email", "do_not_contact", "last_year", "lifetime")),
    "sybunt": ("SYBUNT: gave before last year, not since",
               ("donor_id", "name", "email", "do_not_contact", "last_gift_year", "lifetime")),
    "first-time": ("First-time donors",
                   ("donor_id", "name", "email", "do_not_contact", "this_year")),
}


def _year() -> int:
    today = state().today()
    year = request.args.get("year", type=int) or today.year
    if not 1900 <= year <= today.year:
        abort(400, "year: a calendar year up to this one")
    return year


def _segment():
    """The donor segment named by ?segment=ID (404 for an unknown one: a report of "every
    donor" under a segment's name would mislead)."""
    if not request.args.get("segment"):
        return None
    errors: list[str] = []
    segment = segment_arg(get_session(), errors)
    if segment is None:
        abort(404)
    return segment


def _build(year: int, segment=None) -> reports.Reports:
    currency = state().reporting_currency
    donors = segment_donor_ids(get_session(), segment) if segment is not None else None
    return reports.build(get_session(), year, currency, currency_exponent(currency),
                         donors=donors)


@bp.get("/")
@role_required(READ)
def index():
    year = _year()
    segment = _segment()
    built = _build(year, segment)
    currency = built.currency
    listed = {donor_id for rows in (built.lybunt[:25], built.sybunt[:25], built.first_time[:25])
              for donor_id, *_rest in rows}
    donors_svg, _ = charts.donors_chart(
        "donors", f"Donors per year, {built.by_year[0].year}–{year}",
        [(str(f.year), f.retained, f.recaptured, f.new) for f in built.by_year])
    months_svg, _ = charts.months_chart(
        "months", f"Accepted giving per month, {year} ({currency})",
        [(MONTHS[m - 1], total) for m, _n, total in built.by_month], currency)
    designated = reports.by_designation(get_session(), year, currency)
    designation_svgs = {
        kind: charts.designation_chart(
            f"by-{kind}", f"Giving by {kind}, {year} ({currency})",
            [(row.name, row.total_minor, row.restricted) for row in rows], currency)[0]
        for kind, rows in designated.rows.items() if rows}
    return render_template(
        "reports/index.html", r=built, year=year, currency=currency,
        names=reports.donor_names(get_session(), listed),
        donors_svg=donors_svg, months_svg=months_svg, months=MONTHS,
        lists=LISTS, this_year=state().today().year, designated=designated,
        designation_svgs=designation_svgs, designation_lists=DESIGNATION_LISTS,
        segment=segment, segments=segment_choices(get_session()))


#: Giving by campaign, appeal or fund as CSV: no people in them (figures per record).
DESIGNATION_LISTS = {"campaigns": "campaign", "appeals": "appeal", "funds": "fund"}
DESIGNATION_HEADER = ("id", "code", "name", "restricted", "gifts", "donors", "giving",
                      "goal", "currency")


@bp.get("/giving-by/<kind>.csv")
@role_required("reports.export")
def designation_download(kind: str):
    if kind not in DESIGNATION_LISTS:
        abort(404)
    year = _year()
    currency = state().reporting_currency
    designated = reports.by_designation(get_session(), year, currency)
    chosen = designated.rows[DESIGNATION_LISTS[kind]]

    def rows():
        for row in chosen:
            yield (row.id if row.id is not None else "", row.code, row.name,
                   row.restricted if DESIGNATION_LISTS[kind] == "fund" else "", row.gifts,
                   row.donors if row.id is not None else "",
                   format_amount(row.total_minor, currency),
                   format_amount(row.goal_minor, currency) if row.goal_minor else "", currency)

    return Response(csv_chunks(DESIGNATION_HEADER, rows()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="giving-by-{kind}-{year}.csv"',
        "Cache-Control": "no-store"})


@bp.get("/<kind>.csv")
@role_required("reports.export")
def download(kind: str):
    if kind not in LISTS:
        abort(404)
    year = _year()
    segment = _segment()
    built = _build(year, segment)
    currency = built.currency
    rows_of = {"lybunt": built.lybunt, "sybunt": built.sybunt, "first-time": built.first_time}
    chosen = rows_of[kind]
    names = reports.donor_names(get_session(), (r[0] for r in chosen))
    session = get_session()
    # Like every export: who took which list of people, when (app/web/exports.py).
    with ledger_write(session):
        audit.append(session, g.actor, f"export.report.{kind}", "export", None,
                     {"format": "csv", "year": year, "rows": len(chosen),
                      **({"segment": segment.id} if segment is not None else {})})

    def rows():
        for donor_id, *figures in chosen:
            name, email, quiet = names.get(donor_id, ("", None, False))
            money = [f if kind == "sybunt" and i == 0 else format_amount(f, currency)
                     for i, f in enumerate(figures)]
            yield (donor_id, name, email, quiet, *money)

    return Response(csv_chunks(LISTS[kind][1], rows()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{kind}-{year}.csv"',
        "Cache-Control": "no-store"})
