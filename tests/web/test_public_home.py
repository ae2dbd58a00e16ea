"""The public home page says what the organisation is and leads to giving; "contact us"
gives the contact address from the settings wherever the public reads it."""

from __future__ import annotations

import html

from app import create_app


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return html.unescape(response.get_data(as_text=True))


def test_home_says_what_the_organisation_is_and_links_to_donate(client):
    page = _page(client, "/")
    assert '<p class="lead" id="about">We test frontier AI systems' in page
    assert 'id="donate-link" href="/donate' in page
    assert 'href="/disclosures/' in page or 'href="/disclosures"' in page
    assert "contact us." in page and "mailto:" not in page  # no address configured


def test_contact_address_and_description_come_from_the_settings(database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "SECRET_KEY": "test-secret-key-not-for-production",
                      "ORG_NAME": "Open Evals", "ORG_DESCRIPTION": "We evaluate models.",
                      "ORG_CONTACT_EMAIL": "giving@openevals.example"})
    try:
        client = app.test_client()
        home = _page(client, "/")
        assert "<h1>Open Evals</h1>" in home and "We evaluate models." in home
        link = ('contact us at <a href="mailto:giving@openevals.example" id="contact-address">'
                'giving@openevals.example</a>')
        assert link in home
        # Online giving is not configured here: the donate page says how else to give.
        donate = _page(client, "/donate")
        assert 'id="not-configured"' in donate and link in donate
    finally:
        app.extensions["armslength"].engine.dispose()
