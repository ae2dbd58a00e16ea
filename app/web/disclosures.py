"""Conflict-of-interest disclosures: the public pages and the staff preview and publishing.

Public (no sign-in): /disclosures lists published disclosures; each one is served from
its frozen JSON as HTML, JSON (byte for byte what was hashed), Markdown and PDF, with a
comparison against the one published before it.

Staff: any signed-in role may preview the disclosure of any period (read); publishing
freezes it and needs the `review` permission (compliance reviewers and admins), as the
reviewers are the people who decide held gifts and answer for the figures.
"""

from __future__ import annotations

import json
from datetime import date

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
from app.errors import LedgerBusy, SigningUnavailable
from app.extensions import audit_keys, state
from app.http_errors import answer_for
from app.ledger import checkpoints, disclosure
from app.web.access import get_or_404, public, role_required
from app.web.documents import disclosure_markdown, disclosure_pdf, disclosure_sections
from models import PublishedDisclosure

bp = Blueprint("disclosures", __name__, url_prefix="/disclosures")
staff_bp = Blueprint("staff_disclosures", __name__, url_prefix="/staff/disclosures")

#: The figures in the order a reader meets them, with the anchor of their "how to reproduce".
SOURCE_LABELS = {
    "policy": "The policy",
    "lab_evaluation_payments_accepted": "Payments from labs for evaluations accepted",
    "senior_decision_maker_gifts_accepted": "Gifts from senior decision-makers accepted",
    "lab_employee_share_at_end": "Lab-employee share at the period end",
    "lab_employee_share_max": "Highest lab-employee share in the period",
    "exceptions_accepted": "Exceptions to these promises",
    "lab_corporate_accepted": "Lab corporate money accepted by a reviewer",
    "in_kind": "In-kind arrangements with labs",
    "in_kind_gifts": "In-kind gifts from labs",
}


def _markdown_response(text: str, name: str) -> Response:
    return Response(text, mimetype="text/markdown",
                    headers={"Content-Disposition": f'inline; filename="{name}.md"'})


def _pdf_response(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


def _file_name(content: dict) -> str:
    return f"disclosure-{content['period']['from']}-{content['period']['to']}"


# --- public ----------------------------------------------------------------------------------

@bp.get("", strict_slashes=False)
@public
def index():
    records = get_session().execute(
        select(PublishedDisclosure).order_by(PublishedDisclosure.id.desc())
    ).scalars().all()
    return render_template("disclosures/index.html", records=records)


def _published(disclosure_id: int) -> tuple[PublishedDisclosure, dict]:
    record = get_or_404(PublishedDisclosure, disclosure_id)
    return record, disclosure.published_content(record)


@bp.get("/<int:disclosure_id>")
@public
def view(disclosure_id: int):
    record, content = _published(disclosure_id)
    previous = disclosure.previous_published(get_session(), record)
    # "(verified)": the content hash equals the one in its disclosure.published audit entry
    # and the one its checkpoint signed under a trusted key, not just the row's own column.
    check = checkpoints.check_disclosure(get_session(), record, audit_keys())
    return render_template("disclosures/view.html", record=record, content=content,
                           sections=disclosure_sections(content), labels=SOURCE_LABELS,
                           verified=check.verified, check=check, previous=previous)


@bp.get("/<int:disclosure_id>.json")
@public
def view_json(disclosure_id: int):
    record = get_or_404(PublishedDisclosure, disclosure_id)
    # The stored text itself: its SHA-256 is the published hash.
    return Response(record.content, mimetype="application/json",
                    headers={"X-Content-SHA256": record.content_hash})


@bp.get("/<int:disclosure_id>.signed.json")
@public
def view_signed_json(disclosure_id: int):
    """The published JSON with its signed checkpoint, for `armslength verify-disclosure`
    (docs/verify.md). 404 for a disclosure published without one."""
    record = get_or_404(PublishedDisclosure, disclosure_id)
    check = checkpoints.check_disclosure(get_session(), record, audit_keys())
    if check.checkpoint is None:
        abort(404, "This disclosure was published without a signed checkpoint.")
    bundle = checkpoints.signed_bundle(record, check.checkpoint)
    return Response(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n",
                    mimetype="application/json",
                    headers={"Content-Disposition": f'inline; filename="disclosure-'
                                                    f'{disclosure_id}.signed.json"'})


@bp.get("/<int:disclosure_id>.md")
@public
def view_markdown(disclosure_id: int):
    record, content = _published(disclosure_id)
    text = disclosure_markdown(content) + (
        f"\nPublished {record.published_at.isoformat(timespec='seconds')}. SHA-256 of the "
        f"published JSON: `{record.content_hash}`.\n")
    return _markdown_response(text, _file_name(content))


@bp.get("/<int:disclosure_id>.pdf")
@public
def view_pdf(disclosure_id: int):
    record, content = _published(disclosure_id)
    data = disclosure_pdf(content, {"at": record.published_at.isoformat(timespec="seconds"),
                                    "hash": record.content_hash})
    return _pdf_response(data, _file_name(content))


@bp.get("/<int:disclosure_id>/changes")
@public
def changes(disclosure_id: int):
    record, content = _published(disclosure_id)
    previous = disclosure.previous_published(get_session(), record)
    before = disclosure.published_content(previous) if previous else None
    return render_template("disclosures/changes.html", record=record, previous=previous,
                           changes=disclosure.compare(before, content))


# --- staff -----------------------------------------------------------------------------------

class PublishForm(FlaskForm):
    start = HiddenField()
    end = HiddenField()


def _period() -> tuple[date, date] | str:
    """?from=&to= of a preview, or the message saying what is wrong with them."""
    try:
        start = date.fromisoformat(request.args.get("from", ""))
        end = date.fromisoformat(request.args.get("to", ""))
        disclosure.check_period(start, end)
    except disclosure.PeriodError as error:
        return str(error)
    except ValueError:
        return "Give the period as two dates, YYYY-MM-DD."
    return start, end


def _compute(start: date, end: date) -> dict:
    st = state()
    session = get_session()
    result = disclosure.conflict_disclosure(session, start, end, st.policy_for(session),
                                            st.reporting_currency, current_app.config["ORG_NAME"])
    return disclosure.disclosure_content(result)


def _default_period() -> tuple[date, date]:
    today = state().today()
    return date(today.year, 1, 1), today


@staff_bp.get("/")
@role_required(READ)
def staff_index():
    return _staff_page()


def _staff_page(error: str | None = None, status: int = 200):
    start, end = _default_period()
    records = get_session().execute(
        select(PublishedDisclosure).order_by(PublishedDisclosure.id.desc())
    ).scalars().all()
    return render_template("disclosures/staff.html", records=records, error=error,
                           start=request.args.get("from") or start.isoformat(),
                           end=request.args.get("to") or end.isoformat()), status


@staff_bp.get("/preview")
@role_required(READ)
def preview():
    period = _period()
    if isinstance(period, str):
        return _staff_page(error=period, status=422)
    start, end = period
    content = _compute(start, end)
    last = disclosure.latest_published(get_session())
    form = PublishForm(data={"start": start.isoformat(), "end": end.isoformat()})
    return render_template(
        "disclosures/preview.html", content=content, sections=disclosure_sections(content),
        labels=SOURCE_LABELS, last=last, form=form,
        changes=disclosure.compare(disclosure.published_content(last) if last else None, content),
        query={"from": start.isoformat(), "to": end.isoformat()},
    )


def _preview_content() -> dict:
    period = _period()
    if isinstance(period, str):
        abort(422, period)
    return _compute(*period)


@staff_bp.get("/preview.json")
@role_required(READ)
def preview_json():
    content = _preview_content()
    return Response(disclosure.canonical_json(content), mimetype="application/json")


@staff_bp.get("/preview.md")
@role_required(READ)
def preview_markdown():
    content = _preview_content()
    return _markdown_response(disclosure_markdown(content), _file_name(content) + "-preview")


@staff_bp.get("/preview.pdf")
@role_required(READ)
def preview_pdf():
    content = _preview_content()
    return _pdf_response(disclosure_pdf(content), _file_name(content) + "-preview")


@staff_bp.post("/publish")
@role_required("review")
def publish():
    form = PublishForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; open the preview again.")
    try:
        start, end = date.fromisoformat(form.start.data or ""), date.fromisoformat(form.end.data or "")
        session = get_session()
        st = state()
        record = disclosure.publish(
            session, start, end, st.policy_for(session), st.reporting_currency,
            current_app.config["ORG_NAME"], g.actor, keys=audit_keys(),
            # In production a disclosure without a signed checkpoint is refused (docs/verify.md).
            signature_required=current_app.config["ARMSLENGTH_ENV"] == "production")
    except disclosure.PeriodError as error:
        return _staff_page(error=f"Nothing was published: {error}.", status=422)
    except SigningUnavailable as error:
        return _staff_page(error=f"Nothing was published: {error}.",
                           status=answer_for(error).status)
    except ValueError:  # a malformed date
        return _staff_page(error="Give the period as two dates, YYYY-MM-DD, the end not before "
                                 "the start.", status=422)
    except LedgerBusy as error:
        flash(answer_for(error).message, "error")
        return redirect(url_for("staff_disclosures.preview", **{"from": form.start.data,
                                                                "to": form.end.data}))
    flash(f"Disclosure {record.id} published. Its figures are now frozen.", "success")
    return redirect(url_for("disclosures.view", disclosure_id=record.id))
