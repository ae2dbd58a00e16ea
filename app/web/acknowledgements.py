"""Donor acknowledgements: per-gift letters for gifts of $250 or more, annual statements,
sending them by e-mail with the PDF attached, and refunds made after a letter was sent.

Any staff role may read the letters (read); sending one is fundraising work and needs
`gifts.write` (fundraisers and admins), like recording the gift did. A letter printed and
posted is recorded as sent by post (`acknowledgements.post`: fundraisers, finance, admins),
with the address it went to; it then leaves the list of gifts awaiting a letter.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

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
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import LedgerBusy, NotAllowed, NotFound
from app.extensions import state
from app.ledger import acknowledgements as ack
from app.mail import Attachment, MailError, build_message, mail_settings, send
from app.web.access import get_or_404, role_required
from app.web.documents import letter_pdf
from app.web.documents import tribute_pdf as tribute_notice_pdf
from app.web.formtools import (
    INVALID,
    AmountField,
    blank_to_none,
    date_arg,
    ordered,
    page_number,
    sort_from_args,
)
from app.web.segments import segment_arg, segment_choices, segment_donor_ids
from app.year_end import email_statements, year_end_pdf
from models import Acknowledgement, Donor, Gift
from models.money import MoneyError, format_amount, parse_typed_amount

bp = Blueprint("acknowledgements", __name__, url_prefix="/staff/acknowledgements")

_ZERO = re.compile(r"^0+(\.0+)?$")
PENDING_PER_PAGE = 50


class PostedForm(FlaskForm):
    posted_to = TextAreaField(
        "Posted to", validators=[DataRequired(), Length(max=320)],
        description="The postal address the printed letter (the PDF) was sent to.")


class SendForm(FlaskForm):
    send_to = EmailField("Send to", validators=[DataRequired(), Email(), Length(max=320)])
    goods_description = TextAreaField(
        "Goods or services provided in return", validators=[Optional(), Length(max=1000)],
        description="Leave empty when nothing was provided: the letter then says so.")
    goods_value = AmountField(
        "Their good-faith estimated value", validators=[Optional(), Length(max=40)],
        description="In the reporting currency, major units, e.g. 75.00.")


def _organisation() -> ack.Organisation:
    return ack.Organisation.from_settings(current_app.config)


def _goods(description: str | None, value: str | None) -> ack.Goods | None | dict:
    """The goods-or-services statement's facts, or {"field": [message]} when they are wrong."""
    description, value = blank_to_none(description), blank_to_none(value)
    if description is None and value is None:
        return None
    if description is None:
        return {"goods_description": ["Describe what was provided, or leave the value empty."]}
    if value is None:
        return {"goods_value": ["Give a good-faith estimate of its value (0 if insubstantial)."]}
    currency = state().reporting_currency
    try:
        minor = 0 if _ZERO.match(value) else parse_typed_amount(value, currency)
    except MoneyError as error:
        return {"goods_value": [str(error)]}
    return ack.Goods(description=description, value_minor=minor, currency=currency)


def _goods_from_args() -> ack.Goods | None:
    goods = _goods(request.args.get("goods_description"), request.args.get("goods_value"))
    return None if isinstance(goods, dict) else goods


# --- lists -----------------------------------------------------------------------------------

@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    currency = state().reporting_currency
    recent = session.execute(
        select(Acknowledgement, Donor).join(Donor, Donor.id == Acknowledgement.donor_id)
        .order_by(Acknowledgement.id.desc()).limit(50)
    ).all()
    errors: list[str] = []
    received_from = date_arg("from", "Received from", errors)
    received_to = date_arg("to", "Received to", errors)
    segment = segment_arg(session, errors)
    conditions = [*([Gift.received_on >= received_from] if received_from else []),
                  *([Gift.received_on <= received_to] if received_to else []),
                  *([Donor.id.in_(segment_donor_ids(session, segment))] if segment else [])]
    sort = sort_from_args(ack.PENDING_SORT, "received", descending=True,
                          desc_first=("received", "id", "amount"))
    page = page_number(ack.count_pending(session, currency, conditions), PENDING_PER_PAGE)
    pending = ack.pending_acknowledgements(
        session, currency, offset=page.offset, limit=page.per_page, conditions=conditions,
        order=ordered(sort, ack.PENDING_SORT, Gift.id))
    return render_template(
        "acknowledgements/index.html", pending=pending, page=page, recent=recent, sort=sort,
        errors=errors, received_from=received_from, received_to=received_to, segment=segment,
        segments=segment_choices(session),
        currency=currency, threshold=ack.threshold_minor(currency),
        flagged=len(ack.refunded_after_acknowledgement(session)),
        mail_on=mail_settings(current_app.config) is not None, year=state().today().year - 1,
    )


@bp.get("/annual")
@role_required(READ)
def annual_picker():
    donor_id, year = request.args.get("donor_id", ""), request.args.get("year", "")
    if not (donor_id.isdigit() and year.isdigit() and 1900 <= int(year) <= 9000
            and 0 < int(donor_id) < 2**31):
        flash("Give a donor number and a year.", "error")
        return redirect(url_for("acknowledgements.index"))
    return redirect(url_for("acknowledgements.annual", donor_id=int(donor_id), year=int(year)))


@bp.get("/refunded")
@role_required(READ)
def refunded():
    return render_template("acknowledgements/refunded.html",
                           flags=ack.refunded_after_acknowledgement(get_session()))


# --- one letter ------------------------------------------------------------------------------

def _gift_letter(gift_id: int, goods: ack.Goods | None) -> ack.Letter:
    if get_or_404(Gift, gift_id).goods_description is not None:
        goods = None  # the gift's own recorded goods are stated; the page offers no others
    try:
        return ack.gift_letter(get_session(), gift_id, _organisation(), state().today(), goods)
    except NotAllowed as error:
        abort(404, str(error))


def _annual_letter(donor_id: int, year: int, goods: ack.Goods | None) -> ack.Letter:
    get_or_404(Donor, donor_id)
    if not 1900 <= year <= 9000:
        abort(404)
    try:
        return ack.annual_letter(get_session(), donor_id, year, _organisation(), state().today(),
                                 goods)
    except NotFound:
        abort(404, f"No accepted gift from this donor in {year}.")


def _page(letter: ack.Letter, form: SendForm, sent: list, pdf_url: str, status: int = 200,
          posted_form: PostedForm | None = None):
    if letter.goods is not None:  # the PDF shows the same goods statement as the page
        pdf_url += "?" + urlencode({
            "goods_description": letter.goods.description,
            "goods_value": format_amount(letter.goods.value_minor, letter.goods.currency)})
    return render_template(
        "acknowledgements/letter.html", letter=letter, text=ack.letter_text(letter), form=form,
        sent=sent, pdf_url=pdf_url, mail_on=mail_settings(current_app.config) is not None,
        posted_form=posted_form or _posted_form(letter),
        posted_url=request.path.rstrip("/") + "/posted",
        recorded_goods=any(g.goods is not None for g in letter.gifts),
    ), status


def _posted_form(letter: ack.Letter) -> PostedForm:
    """The form to record a posted letter, the donor's postal address filled in."""
    form = PostedForm()
    if request.method == "GET" and letter.donor_address:
        form.posted_to.data = f"{letter.donor_name}\n{letter.donor_address}"
    return form


def _form(letter: ack.Letter) -> SendForm:
    form = SendForm()
    if request.method == "GET":
        form.send_to.data = letter.donor_email or ""
    return form


def _handle(letter_for, pdf_url: str, sent: list):
    """GET shows the letter; POST previews it with the form's goods, or sends it."""
    if request.method == "POST" and not current_user.can("gifts.write"):
        abort(403)  # the role first, then the lookup: a refused role learns nothing
    letter = letter_for(None)
    form = _form(letter)
    if request.method == "GET":
        return _page(letter, form, sent, pdf_url)
    if not form.validate_on_submit():
        return _page(letter, form, sent, pdf_url, INVALID)
    goods = _goods(form.goods_description.data, form.goods_value.data)
    if isinstance(goods, dict):
        for name, messages in goods.items():
            getattr(form, name).errors = [*getattr(form, name).errors, *messages]
        return _page(letter, form, sent, pdf_url, INVALID)
    letter = letter_for(goods)
    if request.form.get("action") != "send":
        return _page(letter, form, sent, pdf_url)
    settings = mail_settings(current_app.config)
    if settings is None:
        form.form_errors = [*form.form_errors, "E-mail is not configured (SMTP_HOST and MAIL_FROM); "
                            "nothing was sent. Download the PDF instead."]
        return _page(letter, form, sent, pdf_url, INVALID)
    to = form.send_to.data.strip()
    name = (f"acknowledgement-gift-{letter.gift_id}.pdf" if letter.kind == "gift"
            else f"giving-statement-{letter.year}-donor-{letter.donor_id}.pdf")
    subject = (f"{letter.organisation.name}: acknowledgement of your gift" if letter.kind == "gift"
               else f"{letter.organisation.name}: your {letter.year} giving statement")
    message = build_message(settings.sender, to, subject, ack.letter_text(letter),
                            (Attachment(name, letter_pdf(letter)),))
    try:
        send(settings, message)
    except MailError as error:
        current_app.logger.warning("acknowledgement not sent: %s", error)
        form.form_errors = [*form.form_errors, f"Not sent: {error}"]
        return _page(letter, form, sent, pdf_url, 502)
    try:
        ack.record_sent(get_session(), letter, to, g.actor)
    except LedgerBusy:
        # The e-mail left; the record must not be lost silently.
        current_app.logger.error("acknowledgement e-mailed to %s but not recorded (ledger busy)", to)
        flash(f"The letter was e-mailed to {to}, but the ledger was busy and the sending could "
              "not be recorded. Tell an administrator before sending it again.", "error")
        return redirect(request.path)
    flash(f"Acknowledgement e-mailed to {to} with the PDF attached.", "success")
    return redirect(request.path)


def _record_posted(letter_for, pdf_url: str, sent: list, back: str):
    """Record that the letter (with the goods statement the page showed) was printed and
    posted: the ledger stores it as sent by post, audited, like an e-mailed one."""
    if not current_user.can("acknowledgements.post"):
        abort(403)  # the role first, then the lookup: a refused role learns nothing
    goods = _goods(request.form.get("goods_description"), request.form.get("goods_value"))
    letter = letter_for(None if isinstance(goods, dict) else goods)
    form = PostedForm()
    if not form.validate_on_submit() or isinstance(goods, dict):
        return _page(letter, SendForm(formdata=None), sent, pdf_url, INVALID, posted_form=form)
    address = form.posted_to.data.strip()
    try:
        ack.record_sent(get_session(), letter, address, g.actor, channel="post")
    except LedgerBusy:
        form.form_errors = [*form.form_errors, "The ledger is busy; nothing was recorded. "
                            "Try again in a moment."]
        return _page(letter, SendForm(formdata=None), sent, pdf_url, 503, posted_form=form)
    flash("Recorded as sent by post.", "success")
    return redirect(back)


@bp.route("/gifts/<int:gift_id>", methods=["GET", "POST"])
@role_required(READ)
def gift(gift_id: int):
    return _handle(lambda goods: _gift_letter(gift_id, goods),
                   url_for("acknowledgements.gift_pdf", gift_id=gift_id),
                   ack.sent_for_gift(get_session(), gift_id))


@bp.post("/gifts/<int:gift_id>/posted")
@role_required(READ)
def gift_posted(gift_id: int):
    return _record_posted(lambda goods: _gift_letter(gift_id, goods),
                          url_for("acknowledgements.gift_pdf", gift_id=gift_id),
                          ack.sent_for_gift(get_session(), gift_id),
                          url_for("acknowledgements.gift", gift_id=gift_id))


@bp.get("/gifts/<int:gift_id>.pdf")
@role_required(READ)
def gift_pdf(gift_id: int):
    letter = _gift_letter(gift_id, _goods_from_args())
    return Response(letter_pdf(letter), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="acknowledgement-gift-{gift_id}.pdf"'})


@bp.route("/donors/<int:donor_id>/<int:year>", methods=["GET", "POST"])
@role_required(READ)
def annual(donor_id: int, year: int):
    return _handle(lambda goods: _annual_letter(donor_id, year, goods),
                   url_for("acknowledgements.annual_pdf", donor_id=donor_id, year=year),
                   ack.sent_for_year(get_session(), donor_id, year))


@bp.post("/donors/<int:donor_id>/<int:year>/posted")
@role_required(READ)
def annual_posted(donor_id: int, year: int):
    return _record_posted(lambda goods: _annual_letter(donor_id, year, goods),
                          url_for("acknowledgements.annual_pdf", donor_id=donor_id, year=year),
                          ack.sent_for_year(get_session(), donor_id, year),
                          url_for("acknowledgements.annual", donor_id=donor_id, year=year))


@bp.get("/donors/<int:donor_id>/<int:year>.pdf")
@role_required(READ)
def annual_pdf(donor_id: int, year: int):
    letter = _annual_letter(donor_id, year, _goods_from_args())
    return Response(letter_pdf(letter), mimetype="application/pdf", headers={
        "Content-Disposition":
            f'inline; filename="giving-statement-{year}-donor-{donor_id}.pdf"'})


@bp.get("/gifts/<int:gift_id>/tribute.pdf")
@role_required(READ)
def tribute_pdf(gift_id: int):
    """The notice to the person a tribute gift's donor asked us to tell (no amount)."""
    get_or_404(Gift, gift_id)
    try:
        letter = ack.tribute_letter(get_session(), gift_id, _organisation(), state().today())
    except NotAllowed as error:
        abort(404, str(error))
    return Response(tribute_notice_pdf(letter), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="tribute-notice-gift-{gift_id}.pdf"'})


# --- the year-end batch ----------------------------------------------------------------------

class YearEndForm(FlaskForm):
    year = IntegerField("Year", validators=[InputRequired(), NumberRange(min=1900, max=9000)])


@bp.route("/year-end", methods=["GET", "POST"])
@role_required("statements.year_end")
def year_end():
    """Every donor's statement for a year: one PDF to print, or an e-mail to each donor."""
    form = YearEndForm()
    session = get_session()
    if request.method == "GET":
        form.year.data = state().today().year - 1
    mail_on = mail_settings(current_app.config) is not None
    page = {"form": form, "mail_on": mail_on, "result": None, "donors": None}
    if not form.validate_on_submit():
        if form.year.data and not form.year.errors:
            page["donors"] = ack.count_year_end_donors(session, form.year.data)
        return render_template("acknowledgements/year_end.html", **page), (
            INVALID if request.method == "POST" else 200)
    year = form.year.data
    organisation, today = _organisation(), state().today()
    if request.form.get("action") != "email":
        return Response(year_end_pdf(session, year, organisation, today),
                        mimetype="application/pdf", headers={
                            "Content-Disposition":
                                f'attachment; filename="giving-statements-{year}.pdf"'})
    settings = mail_settings(current_app.config)
    if settings is None:
        form.form_errors = [*form.form_errors, "E-mail is not configured (SMTP_HOST and "
                            "MAIL_FROM); nothing was sent. Print the PDF instead."]
        return render_template("acknowledgements/year_end.html", **page), INVALID
    page["result"] = email_statements(session, year, organisation, today, settings, g.actor)
    page["donors"] = ack.count_year_end_donors(session, year)
    return render_template("acknowledgements/year_end.html", **page)
