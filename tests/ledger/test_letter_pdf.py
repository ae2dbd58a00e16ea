"""Letters' PDFs: an embedded Unicode font, the letterhead, and no internal hash in the text."""

from __future__ import annotations

import io
from datetime import date

from PIL import Image
from pypdf import PdfReader

from app.ledger.acknowledgements import Letter, LetterGift, Organisation
from app.web.documents import FONTS, letter_pdf


def _letter(donor_name: str, organisation: Organisation) -> Letter:
    return Letter(kind="gift", organisation=organisation, letter_date=date(2026, 12, 4),
                  donor_id=7, donor_name=donor_name, donor_email=None, gift_id=12,
                  gifts=(LetterGift(12, date(2026, 12, 1), "cash", 50_000, "USD", None),))


def _read(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data))


def _text(reader: PdfReader) -> str:
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_names_in_any_script_print_as_written():
    org = Organisation("Інститут оцінювання", address="Вулиця 1\nКиїв")
    for name in ("Жанна Иванова", "Σοφία Παπαδοπούλου", "Nguyễn Thị Minh Khai", "Zoë Ŝtraße"):
        text = _text(_read(letter_pdf(_letter(name, org))))
        assert f"Dear {name}," in text, (name, text)
        assert "Інститут оцінювання" in text and "Київ" in text
        assert "?" not in text


def test_the_font_is_embedded_not_taken_from_the_machine():
    reader = _read(letter_pdf(_letter("Жанна", Organisation("Org"))))
    fonts = {str(font["/BaseFont"]) for page in reader.pages
             for font in page["/Resources"]["/Font"].values()}
    assert fonts and all("DejaVuSans" in name for name in fonts), fonts
    descriptors = [font["/DescendantFonts"][0]["/FontDescriptor"] for page in reader.pages
                   for font in page["/Resources"]["/Font"].values()]
    assert all("/FontFile2" in d for d in descriptors)  # the glyphs travel with the file


def test_the_hash_is_in_the_metadata_not_in_the_letter():
    letter = _letter("Dana Donor", Organisation("Independent Evaluation Institute"))
    reader = _read(letter_pdf(letter))
    assert letter.content_hash() not in _text(reader)
    assert reader.metadata["/Keywords"] == f"content-sha256:{letter.content_hash()}"
    assert reader.metadata["/Subject"] == "gift acknowledgement for gift 12, donor 7"


def test_the_logo_is_drawn_when_the_setting_names_one(tmp_path):
    logo = tmp_path / "logo.png"  # made with Pillow, which fpdf2 itself depends on
    Image.new("RGB", (120, 40), (20, 60, 120)).save(logo)
    with_logo = _read(letter_pdf(_letter("Dana", Organisation("Org", logo_file=str(logo)))))
    without = _read(letter_pdf(_letter("Dana", Organisation("Org"))))
    assert len(with_logo.pages[0].images) == 1
    assert len(without.pages[0].images) == 0


def test_the_fonts_ship_with_their_licence():
    assert {p.name for p in FONTS.iterdir()} >= {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf",
                                                 "LICENSE-DejaVu.txt"}
