"""Documents for download: the disclosure as Markdown and PDF, and a small PDF writer.

PDFs embed DejaVu Sans (shipped in app/static/fonts, Bitstream Vera licence), so a
donor named Жанна, Σοφία or Nguyễn prints as written, and nothing is read from the
machine's fonts: the output is the same everywhere. fpdf2 embeds only the glyphs used.
Scripts DejaVu Sans does not cover (Chinese, Japanese, Korean, ...) print as "?".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from pathlib import Path

from fpdf import FPDF

from app.ledger.acknowledgements import Letter, Organisation, TributeLetter, letter_text
from policies.share import percent_text

FONTS = Path(__file__).resolve().parents[1] / "static" / "fonts"
FONT = "DejaVuSans"


@cache
def _covered() -> frozenset[int]:
    """The code points DejaVu Sans draws (Latin, Greek, Cyrillic and more; not CJK)."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency

    return frozenset(TTFont(str(FONTS / "DejaVuSans.ttf")).getBestCmap())


def pdf_text(text: object) -> str:
    """Text for the PDF: the embedded font draws every script it covers. A character it does
    not (CJK, say) is written as its decomposed form if that is drawable, else "?", so a
    missing glyph shows instead of vanishing; control characters other than line breaks go."""
    covered = _covered()
    out = []
    for ch in str(text):
        if ch in "\n\t" or ord(ch) in covered:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cs"):
            continue
        else:
            plain = unicodedata.normalize("NFKD", ch)
            out.append(plain if plain and all(ord(c) in covered for c in plain) else "?")
    return "".join(out)


class PdfDocument:
    """A plain A4 document: headings, paragraphs and two-column tables."""

    def __init__(self, title: str, author: str = ""):
        self.pdf = FPDF(format="A4")
        self.pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
        self.pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.pdf.set_title(pdf_text(title))
        if author:
            self.pdf.set_author(pdf_text(author))
        self.pdf.set_margins(20, 20, 20)
        self.pdf.set_auto_page_break(True, margin=20)
        self.pdf.add_page()

    def _write(self, text: str, size: float, style: str = "", height: float | None = None,
               after: float = 0) -> None:
        self.pdf.set_font(FONT, style, size)
        self.pdf.multi_cell(0, height or size * 0.5, pdf_text(text), align="L", new_x="LMARGIN",
                            new_y="NEXT")
        if after:
            self.pdf.ln(after)

    def title(self, text: str) -> None:
        self._write(text, 17, "B", after=3)

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self._write(text, 12.5, "B", after=1)

    def paragraph(self, text: str, size: float = 10.5, style: str = "") -> None:
        self._write(text, size, style, height=5.2, after=1.5)

    def small(self, text: str) -> None:
        self._write(text, 8.5, "", height=4.2, after=1)

    def rows(self, rows: list[tuple[str, str]], widths: tuple[int, int] = (35, 65)) -> None:
        """A two-column table: label, value."""
        self.pdf.set_font(FONT, "", 10)
        with self.pdf.table(col_widths=widths, first_row_as_headings=False,
                            line_height=5.5, text_align="LEFT") as table:
            for label, value in rows:
                row = table.row()
                row.cell(pdf_text(label))
                row.cell(pdf_text(value))
        self.pdf.ln(2)

    def table(self, header: list[str], rows: list[list[str]], widths: tuple[int, ...]) -> None:
        self.pdf.set_font(FONT, "", 9)
        with self.pdf.table(col_widths=widths, line_height=5, text_align="LEFT") as table:
            head = table.row()
            for text in header:
                head.cell(pdf_text(text))
            for values in rows:
                row = table.row()
                for text in values:
                    row.cell(pdf_text(text))
        self.pdf.ln(2)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


# --- the disclosure ---------------------------------------------------------------------------

def share_label(text: str) -> str:
    """'0.487000' -> '48.70% (0.487000)': the truncated percentage and the exact string."""
    return f"{percent_text(Decimal(text), 2)} ({text})"


def _amount_with_refunds(tally: dict, currency: str) -> str:
    text = f"{tally['amount']} {currency}"
    refunded = tally.get("refunded") or ""
    if any(digit in refunded for digit in "123456789"):
        text += f" (of which refunded by the period end: {refunded} {currency})"
    return text


def _span(start: str, end: str | None) -> str:
    return f"{start} to {end}" if end else f"{start}, ongoing"


def disclosure_sections(content: dict) -> list[tuple[str, list[tuple[str, str]], str]]:
    """(heading, [(label, value)], how to reproduce) for each promise, shared by every format."""
    currency = content["currency"]
    ev = content["lab_evaluation_payments_accepted"]
    sdm = content["senior_decision_maker_gifts_accepted"]
    peak = content["lab_employee_share_max"]
    src = content.get("sources", {})
    funding = content.get("funding_at_end", {})
    share_rows = [
        ("Share on " + content["period"]["to"], share_label(content["lab_employee_share_at_end"])),
        ("Highest in the period", f"{share_label(peak['value'])} on {peak['on']}"),
        ("Cap (must stay below)", share_label(content.get("lab_employee_cap", "0"))
         if content.get("lab_employee_cap") else ""),
        ("Window", f"trailing {content.get('lab_employee_window_days', '')} days"),
    ]
    if funding:
        share_rows.append(("Funding in the window ending " + content["period"]["to"],
                           f"{funding['total']} {currency}, of which lab employees "
                           f"{funding['lab_employee']} {currency}"))
    return [
        ("Payments from labs for evaluations accepted", [
            ("Count", str(ev["count"])),
            ("Amount", _amount_with_refunds(ev, currency)),
        ], src.get("lab_evaluation_payments_accepted", "")),
        ("Gifts from senior decision-makers at labs accepted", [
            ("Count", str(sdm["count"])),
            ("Amount", _amount_with_refunds(sdm, currency)),
        ], src.get("senior_decision_maker_gifts_accepted", "")),
        ("Lab-employee share of funding", [r for r in share_rows if r[1]],
         src.get("lab_employee_share_at_end", "") + " | " + src.get("lab_employee_share_max", "")),
    ]


#: How the disclosure names the promise an exception was accepted against.
EXCEPTION_RULES = {
    "lab_evaluation_payment": "Payment from a lab for evaluations",
    "senior_decision_maker": "Gift from a senior decision-maker at a lab",
}
NO_PUBLIC_JUSTIFICATION = "No public justification given."


def exception_rows(content: dict) -> list[list[str]] | None:
    """[received, promise, amount, decided, public justification] for each accepted exception
    to a public promise; None for a disclosure published before the list existed (frozen:
    shown as it was published)."""
    if "exceptions_accepted" not in content:
        return None
    currency = content["currency"]
    return [
        [e["on"], EXCEPTION_RULES.get(e["rule"], e["rule"]), f"{e['amount']} {currency}",
         f"{e['decided_on']} ({e['decision_kind']})",
         e["public_justification"] or NO_PUBLIC_JUSTIFICATION]
        for e in content["exceptions_accepted"]
    ]


EXCEPTION_HEADING = "Exceptions to these promises"
EXCEPTION_COLUMNS = ["Received", "Promise", "Amount", "Decided", "Public justification"]


def corporate_reason_header(content: dict) -> str:
    """Disclosures from before public notes published the reviewer's own note."""
    return "Public justification" if "exceptions_accepted" in content else "Reviewer's reason"


def disclosure_markdown(content: dict) -> str:
    currency = content["currency"]
    period = content["period"]
    lines = [
        f"# {md_text(content.get('title', 'Conflict-of-interest disclosure'))}",
        "",
        f"**{md_text(content.get('organization', ''))}** · period {period['from']} to "
        f"{period['to']} · policy version {md_text(content['policy_version'])} · amounts in "
        f"{currency}",
        "",
        "## Our policy",
        "",
    ]
    lines += [f"- {md_text(item['statement'])}" for item in content["policy"]]
    for heading, rows, source in disclosure_sections(content):
        lines += ["", f"## {heading}", "", "| | |", "|---|---|"]
        lines += [f"| {md_text(label)} | {md_text(value)} |" for label, value in rows]
        lines += ["", f"_How to reproduce:_ {source}"]
    src = content.get("sources", {})
    exceptions = exception_rows(content)
    if exceptions is not None:
        lines += ["", f"## {EXCEPTION_HEADING}", ""]
        if exceptions:
            lines += ["| " + " | ".join(EXCEPTION_COLUMNS) + " |", "|---|---|---|---|---|"]
            lines += ["| " + " | ".join(md_text(v) for v in row) + " |" for row in exceptions]
        else:
            lines.append("None.")
        lines += ["", f"_How to reproduce:_ {src.get('exceptions_accepted', '')}"]
    lines += ["", "## Lab corporate money accepted by a reviewer", ""]
    if content["lab_corporate_accepted"]:
        lines += [f"| Received | From | Amount | Decided | {corporate_reason_header(content)} |",
                  "|---|---|---|---|---|"]
        lines += [
            f"| {c['on']} | {md_text(', '.join(c['organizations']) or 'a covered lab')} | "
            f"{c['amount']} {currency} | {c['decided_on']} ({c['decision_kind']}) | "
            f"{md_text(c['reason'])} |"
            for c in content["lab_corporate_accepted"]
        ]
    else:
        lines.append("None.")
    lines += ["", f"_How to reproduce:_ {src.get('lab_corporate_accepted', '')}"]
    lines += ["", "## In-kind support from labs", ""]
    if content["in_kind"]:
        lines += ["| Lab | What | Purpose | Period | Estimated value |", "|---|---|---|---|---|"]
        lines += [
            f"| {md_text(i['organization'])} | {md_text(i['description'])} | {md_text(i['purpose'])} | "
            f"{_span(i['start_date'], i['end_date'])} | "
            f"{(i['estimated_value'] + ' ' + i['currency']) if i['estimated_value'] else 'not known'} |"
            for i in content["in_kind"]
        ]
    else:
        lines.append("None.")
    lines += ["", f"_How to reproduce:_ {src.get('in_kind', '')}"]
    if content.get("in_kind_gifts"):
        lines += ["", "### In-kind gifts from labs", "", "| Received | From | What | Value |",
                  "|---|---|---|---|"]
        lines += [
            f"| {g['on']} | {md_text(', '.join(g['organizations']) or 'a covered lab')} | "
            f"{md_text(g['description'] or '')} | {g['value']} {currency} |"
            for g in content["in_kind_gifts"]
        ]
        lines += ["", f"_How to reproduce:_ {src.get('in_kind_gifts', '')}"]
    lines += ["", "---", "",
              f"Computed from the ledger at audit-chain head `{content.get('audit_chain_head', '')}`. "
              "Individual donors are not named.", ""]
    return "\n".join(lines)


#: Characters Markdown (CommonMark with GFM tables) reads as markup anywhere in a line:
#: emphasis, code, links and images, raw HTML and entities, table cells, strikethrough.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>&|~])")
#: What would open a heading, list or quote at the start of a line or list item.
_MARKDOWN_LEADING = re.compile(r"^([#+\-]|\d{1,9}(?=[.)](?:\s|$)))")


def md_text(text: object) -> str:
    """Staff-typed text (names, descriptions, reasons) as literal Markdown on one line.

    Stored text is plain text: a link or HTML tag typed into a note must reach the public
    Markdown as the characters typed, never as a link, image or markup.
    """
    line = " ".join(str(text).split())
    line = _MARKDOWN_INLINE.sub(r"\\\1", line)
    leading = _MARKDOWN_LEADING.match(line)
    if leading and leading.group(1)[0].isdigit():
        end = leading.end()
        return f"{line[:end]}\\{line[end:]}"  # "1." or "1)" would number a list
    return f"\\{line}" if leading else line



def disclosure_pdf(content: dict, published: dict | None = None) -> bytes:
    """The disclosure as a PDF. `published`: {"at", "hash"} of a published version."""
    currency = content["currency"]
    period = content["period"]
    doc = PdfDocument(f"{content.get('title', 'Disclosure')} {period['from']} to {period['to']}",
                      content.get("organization", ""))
    doc.title(content.get("title", "Conflict-of-interest disclosure"))
    doc.paragraph(f"{content.get('organization', '')}. Period {period['from']} to {period['to']}. "
                  f"Policy version {content['policy_version']}. Amounts in {currency}.")
    if published:
        doc.small(f"Published {published['at']}. SHA-256 of the published JSON: {published['hash']}")
    doc.heading("Our policy")
    for item in content["policy"]:
        doc.paragraph("- " + item["statement"])
    for heading, rows, source in disclosure_sections(content):
        doc.heading(heading)
        doc.rows(rows)
        doc.small("How to reproduce: " + source)
    exceptions = exception_rows(content)
    if exceptions is not None:
        doc.heading(EXCEPTION_HEADING)
        if exceptions:
            doc.table(EXCEPTION_COLUMNS, exceptions, (18, 30, 20, 20, 40))
        else:
            doc.paragraph("None.")
        doc.small("How to reproduce: " + content.get("sources", {}).get("exceptions_accepted", ""))
    doc.heading("Lab corporate money accepted by a reviewer")
    if content["lab_corporate_accepted"]:
        doc.table(["Received", "From", "Amount", "Decided", corporate_reason_header(content)], [
            [c["on"], ", ".join(c["organizations"]) or "a covered lab", f"{c['amount']} {currency}",
             f"{c['decided_on']} ({c['decision_kind']})", c["reason"]]
            for c in content["lab_corporate_accepted"]
        ], (18, 20, 20, 20, 50))
    else:
        doc.paragraph("None.")
    doc.small("How to reproduce: " + content.get("sources", {}).get("lab_corporate_accepted", ""))
    doc.heading("In-kind support from labs")
    if content["in_kind"]:
        doc.table(["Lab", "What", "Purpose", "Period", "Estimated value"], [
            [i["organization"], i["description"], i["purpose"], _span(i["start_date"], i["end_date"]),
             f"{i['estimated_value']} {i['currency']}" if i["estimated_value"] else "not known"]
            for i in content["in_kind"]
        ], (20, 45, 16, 25, 22))
    else:
        doc.paragraph("None.")
    doc.small("How to reproduce: " + content.get("sources", {}).get("in_kind", ""))
    if content.get("in_kind_gifts"):
        doc.heading("In-kind gifts from labs")
        doc.table(["Received", "From", "What", "Value"], [
            [g["on"], ", ".join(g["organizations"]) or "a covered lab", g["description"] or "",
             f"{g['value']} {currency}"]
            for g in content["in_kind_gifts"]
        ], (20, 25, 55, 25))
    doc.small(f"Computed from the ledger at audit-chain head {content.get('audit_chain_head', '')}. "
              "Individual donors are not named.")
    return doc.output()


# --- acknowledgements -------------------------------------------------------------------------

def _letter_title(letter: Letter) -> str:
    return ("Acknowledgement of your gift" if letter.kind == "gift"
            else f"Giving statement {letter.year}")


def _draw_letter(doc: PdfDocument, organisation: Organisation, title: str, text: str) -> None:
    """One letter on the current page (and as many after it as it needs): the letterhead,
    with the logo (ORG_LOGO_FILE) at the top right when set, the title, then the text's
    blocks (app.ledger.acknowledgements.letter_text's shape: letterhead block first)."""
    logo = organisation.logo_file
    if logo and Path(logo).is_file():
        doc.pdf.image(logo, x=doc.pdf.w - doc.pdf.r_margin - 40, y=doc.pdf.t_margin, w=40,
                      h=16, keep_aspect_ratio=True)
    blocks = text.split("\n\n")
    # The first block is the letterhead (name, address, EIN): the organisation's name bold.
    head = blocks[0].splitlines()
    doc.paragraph(head[0], size=13, style="B")
    if head[1:]:
        doc.paragraph("\n".join(head[1:]), size=9.5)
    doc.pdf.ln(4)
    doc.title(title)
    for block in blocks[1:]:
        doc.paragraph(block)


def letter_pdf(letter: Letter) -> bytes:
    """An acknowledgement letter or annual statement (app.ledger.acknowledgements.Letter), on
    the organisation's letterhead. The letter's content hash identifies it in the PDF's
    metadata, not in what the donor reads."""
    title = _letter_title(letter)
    doc = PdfDocument(f"{letter.organisation.name}: {title}", letter.organisation.name)
    doc.pdf.set_subject(f"{letter.kind} acknowledgement"
                        + (f" for gift {letter.gift_id}" if letter.gift_id
                           else f" for {letter.year}")
                        + f", donor {letter.donor_id}")
    doc.pdf.set_keywords(f"content-sha256:{letter.content_hash()}")
    _draw_letter(doc, letter.organisation, title, letter_text(letter))
    return doc.output()


def tribute_pdf(letter: TributeLetter) -> bytes:
    """The notice of a tribute gift to the person its donor asked us to tell: no amount."""
    title = ("A gift in honour of " if letter.kind == "honour" else "A gift in memory of ") + \
        letter.honoree_name
    doc = PdfDocument(f"{letter.organisation.name}: {title}", letter.organisation.name)
    doc.pdf.set_subject(f"tribute notification for gift {letter.gift_id}")
    _draw_letter(doc, letter.organisation, title, letter.text())
    return doc.output()


def statements_pdf(letters: Iterable[Letter], organisation: Organisation, year: int) -> bytes:
    """Annual statements for print, one PDF: each donor's starts on a page of its own (and
    on an odd page, so a duplex printer never puts two donors on one sheet)."""
    doc = PdfDocument(f"{organisation.name}: giving statements {year}", organisation.name)
    doc.pdf.set_subject(f"annual giving statements for {year}")
    first = True
    for letter in letters:
        if not first:
            doc.pdf.add_page()
            if doc.pdf.page % 2 == 0:  # the back of the last donor's sheet stays blank
                doc.pdf.add_page()
        first = False
        _draw_letter(doc, letter.organisation, _letter_title(letter), letter_text(letter))
    if first:
        doc.paragraph(f"No donor gave an accepted gift in {year}.")
    return doc.output()
