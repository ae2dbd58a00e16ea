"""The public funding page: funding by category over time (app.ledger.funding_report).

Public (no sign-in): /funding lists the published versions and shows the newest; each is
served from its frozen JSON as HTML (a chart and the same figures as a table), JSON (byte
for byte what was hashed), signed JSON (with its checkpoint, for `armslength
verify-funding-report`), CSV (formula-neutralised) and PDF.

Staff: any signed-in role may preview the page for some years; publishing freezes it and
needs the `funding.publish` permission (reviewers, finance, admins), and is audited.
"""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField

from app.auth.roles import READ
from app.db import get_session
from app.errors import LedgerBusy, NotAllowed, SigningUnavailable
from app.extensions import audit_keys, state
from app.http_errors import answer_for
from app.ledger import checkpoints, funding_report
from app.ledger.csv_export import csv_chunks
from app.web import charts
from app.web.access import get_or_404, public, role_required
from app.web.documents import PdfDocument
from models import PublishedFundingReport

bp = Blueprint("funding", __name__, url_prefix="/funding")
staff_bp = Blueprint("staff_funding", __name__, url_prefix="/staff/funding")


def _chart(content: dict):
    names = tuple(c["label"] for c in content["categories"])
    years = [(str(y["year"]) + (" (to date)" if y["to_date"] else ""),
              tuple(y["by_category"][c["key"]]["minor"] for c in content["categories"]))
             for y in content["funding"]]
    svg, _ = charts.funding_chart("funding", "Funding by category, per year", names, years,
                                  content["currency"])
    return svg


def _file_name(content: dict) -> str:
    return f"funding-{content['first_year']}-{content['last_year']}"


def pdf(content: dict, published: dict | None = None) -> bytes:
    cur = content["currency"]
    doc = PdfDocument(f"Funding {content['first_year']}-{content['last_year']}",
                      content["organization"])
    doc.title(f"Where our money comes from, {content['first_year']}-{content['last_year']}")
    doc.paragraph(f"{content['organization']}. Accepted cash gifts by category, net of refunds "
                  f"made up to {content['as_of']}. Amounts in {cur}.")
    if published:
        doc.small(f"Published {published['at']}. SHA-256 of the published JSON: "
                  f"{published['hash']}")
    labels = [c["label"] for c in content["categories"]]
    for year in content["funding"]:
        doc.heading(f"{year['year']}{' (to date)' if year['to_date'] else ''}")
        doc.rows([(label, f"{year['by_category'][c['key']]['amount']} {cur}")
                  for label, c in zip(labels, content["categories"], strict=True)]
                 + [("Total", f"{year['total']['amount']} {cur}")])
    doc.heading("Labs' in-kind support (not cash)")
    rows = [(f"{y['year']}: {lab['lab']}", f"{lab['value']['amount']} {cur}")
            for y in content["lab_in_kind"] for lab in y["labs"]]
    if rows:
        doc.rows(rows)
    else:
        doc.paragraph("None.")
    doc.heading("Donors who agreed to be named")
    doc.paragraph(", ".join(d["name"] for d in content["named_donors"]) or "None.")
    doc.small(f"{content['private_donors']} other donors are not named: donors are private "
              "unless they agree to be named.")
    return doc.output()


# --- public ----------------------------------------------------------------------------------

def _page(record: PublishedFundingReport, records=None):
    content = funding_report.published_content(record)
    check = checkpoints.check_funding_report(get_session(), record, audit_keys())
    return render_template("funding/view.html", record=record, content=content,
                           chart=_chart(content), check=check, records=records)


@bp.get("", strict_slashes=False)
@public
def index():
    records = get_session().execute(
        select(PublishedFundingReport).order_by(PublishedFundingReport.id.desc())
    ).scalars().all()
    if not records:
        return render_template("funding/none.html")
    return _page(records[0], records)


@bp.get("/charts.css")
@public
def charts_css():
    """The charts' stylesheet for the public page (the staff one needs a sign-in)."""
    response = Response(charts.charts_css(), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/<int:report_id>")
@public
def view(report_id: int):
    return _page(get_or_404(PublishedFundingReport, report_id))


@bp.get("/<int:report_id>.json")
@public
def view_json(report_id: int):
    record = get_or_404(PublishedFundingReport, report_id)
    return Response(record.content, mimetype="application/json",
                    headers={"X-Content-SHA256": record.content_hash})


@bp.get("/<int:report_id>.signed.json")
@public
def view_signed_json(report_id: int):
    record = get_or_404(PublishedFundingReport, report_id)
    check = checkpoints.check_funding_report(get_session(), record, audit_keys())
    if check.checkpoint is None:
        abort(404, "This funding page was published without a signed checkpoint.")
    bundle = checkpoints.signed_funding_bundle(record, check.checkpoint)
    return Response(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n",
                    mimetype="application/json",
                    headers={"Content-Disposition": f'inline; filename="funding-{report_id}'
                                                    '.signed.json"'})


@bp.get("/<int:report_id>.csv")
@public
def view_csv(report_id: int):
    record = get_or_404(PublishedFundingReport, report_id)
    content = funding_report.published_content(record)
    return Response(csv_chunks(funding_report.CSV_HEADER, funding_report.csv_rows(content)),
                    mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="{_file_name(content)}.csv"'})


@bp.get("/<int:report_id>.pdf")
@public
def view_pdf(report_id: int):
    record = get_or_404(PublishedFundingReport, report_id)
    content = funding_report.published_content(record)
    data = pdf(content, {"at": record.published_at.isoformat(timespec="seconds"),
                         "hash": record.content_hash})
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{_file_name(content)}'
                                                    '.pdf"'})


# --- staff -----------------------------------------------------------------------------------

class PublishForm(FlaskForm):
    first_year = HiddenField()
    last_year = HiddenField()


def _years() -> tuple[int, int]:
    today = state().today()
    try:
        first = int(request.args.get("first_year", today.year - 4))
        last = int(request.args.get("last_year", today.year))
    except ValueError:
        abort(422, "Give the years as numbers.")
    return first, last


@staff_bp.get("/")
@role_required(READ)
def preview():
    first, last = _years()
    session = get_session()
    st = state()
    try:
        content = funding_report.funding_content(
            session, first, last, st.reporting_currency, current_app.config["ORG_NAME"],
            cooling_off_days=st.policy_for(session).cooling_off_days)
    except (funding_report.YearsError, NotAllowed) as error:
        return render_template("funding/staff.html", content=None, error=str(error),
                               first=first, last=last, form=None, chart=None,
                               last_published=funding_report.latest_published(session)), 422
    form = PublishForm(data={"first_year": first, "last_year": last})
    return render_template("funding/staff.html", content=content, chart=_chart(content),
                           form=form, first=first, last=last, error=None,
                           last_published=funding_report.latest_published(session))


@staff_bp.post("/publish")
@role_required("funding.publish")
def publish():
    form = PublishForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; open the preview again.")
    try:
        first, last = int(form.first_year.data or ""), int(form.last_year.data or "")
        st, session = state(), get_session()
        record = funding_report.publish(
            session, first, last, st.reporting_currency, current_app.config["ORG_NAME"],
            g.actor, keys=audit_keys(),
            signature_required=current_app.config["ARMSLENGTH_ENV"] == "production",
            cooling_off_days=st.policy_for(session).cooling_off_days)
    except (funding_report.YearsError, ValueError) as error:
        flash(f"Nothing was published: {error}.", "error")
        return redirect(url_for("staff_funding.preview"))
    except (SigningUnavailable, NotAllowed, LedgerBusy) as error:
        flash(f"Nothing was published: {answer_for(error).message}", "error")
        return redirect(url_for("staff_funding.preview", first_year=form.first_year.data,
                                last_year=form.last_year.data))
    flash(f"Funding page {record.id} published. Its figures are now frozen.", "success")
    return redirect(url_for("funding.view", report_id=record.id))
