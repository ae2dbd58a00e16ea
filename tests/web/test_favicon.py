"""Every page links an icon, and /favicon.ico (which browsers ask for anyway) finds it."""

from __future__ import annotations

import re


def test_favicon_ico_leads_to_an_svg_icon_without_signing_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    with client.get(response.headers["Location"]) as icon:  # a file response: close it
        assert icon.status_code == 200
        assert icon.mimetype == "image/svg+xml"
        assert icon.get_data(as_text=True).startswith("<svg")


def test_pages_link_the_icon(client, web_as):
    for page in (client.get("/login"), web_as("viewer").get("/staff/donors/")):
        link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">',
                         page.get_data(as_text=True))
        assert link
        with client.get(link.group(1)) as icon:
            assert icon.status_code == 200
