"""Helpers for staff-page tests: sign in as a role, and submit a page's own form as a browser would.

A browser posts the form it was shown: that form's action, its own hidden fields (the CSRF
token among them) and the values of its inputs. `submit` does exactly that and nothing more,
so a page whose form lacks its token fails here as it fails for a user. Every staff page also
carries the sign-out form and its token; `session_token` takes that one on purpose, only for
posts that no page offers the user (a role's refusal, a forged request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from app.auth.users import create_user
from app.ledger.audit import Actor
from models.schemas import UserCreate

PASSWORD = "long enough password"
SIGN_OUT = "/logout"


@dataclass
class PageForm:
    """One <form> as a browser would submit it untouched."""
    action: str  # a path, resolved against the page's address
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden fields and inputs' values
    names: set[str] = field(default_factory=set)  # every named control, filled or not
    #: Other addresses its submit buttons post it to (formaction).
    button_actions: set[str] = field(default_factory=set)

    def posts_to(self, target: str) -> bool:
        return target in {self.action, self.action.split("?")[0], *self.button_actions}

    @property
    def token(self) -> str | None:
        """Its CSRF token; a form with a prefix names it "<prefix>-csrf_token"."""
        return next((v for k, v in self.fields.items() if k.endswith("csrf_token") and v), None)


class _Forms(HTMLParser):
    def __init__(self, page_path: str):
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[PageForm] = []
        self._form: PageForm | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            action = urljoin(self.page_path, a.get("action") or self.page_path)
            self._form = PageForm(action=_path(action), method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        form, name = self._form, a.get("name")
        if form is not None and tag == "button" and a.get("formaction"):
            form.button_actions.add(_path(urljoin(self.page_path, a["formaction"])))
        if form is not None and tag == "option" and self._select and "disabled" not in a:
            # An option has no name of its own: it gives its select's value (the selected
            # one, else the first), as a browser submits it.
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
                form.fields.setdefault(self._select, value)
            if "selected" in a:
                form.fields[self._select] = value
            return
        if form is None or not name or "disabled" in a:
            return
        form.names.add(name)
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
                return
            form.fields[name] = a.get("value", "")
        elif tag == "select":
            self._select, self._select_first = name, None
        elif tag == "textarea":
            self._textarea = name
            form.fields[name] = ""

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def page_forms(html: str, page_path: str = "/") -> list[PageForm]:
    parser = _Forms(page_path)
    parser.feed(html)
    return parser.forms


def page_form(html: str, page_path: str, action: str | None = None) -> PageForm:
    """The page's form that posts to `action` (default: the page itself). Never the sign-out
    form unless that is the one asked for."""
    target = _path(urljoin(page_path, action or page_path))
    forms = [f for f in page_forms(html, page_path) if f.method == "post" and f.posts_to(target)]
    assert forms, f"{page_path} has no form posting to {target}"
    return forms[0]


def csrf_token(html: str, page_path: str | None = None, action: str | None = None) -> str:
    """The CSRF token of the page's own form: the one posting to `action` (default: the
    page itself) when `page_path` is given, else the first form that is not the sign-out."""
    if page_path is None:
        forms = [f for f in page_forms(html) if f.method == "post" and f.action != SIGN_OUT]
        assert forms, "the page has no form of its own to post"
        form = forms[0]
    else:
        form = page_form(html, page_path, action)
    assert form.token, f"the form posting to {form.action} has no CSRF token"
    return form.token


def session_token(html: str) -> str:
    """The sign-out form's token: for a post no page offers (a refusal, a forged request)."""
    return csrf_token(html, "/", SIGN_OUT)


def make_user(app, email: str, role: str, *, established: bool = True) -> int:
    """A staff user. `established`: they have held their role for a month, long enough to
    approve (app.ledger.approvers); pass False for an account made today."""
    with app.extensions["armslength"].sessions() as session:
        user = create_user(session, UserCreate(email=email, role=role, password=PASSWORD),
                           Actor("test", role="admin"))
        if established:
            establish(session, user.id)
        return user.id


def establish(session, user_id: int, days: int = 30) -> None:
    """Date a user's role `days` back, as for staff who have held it that long: with an
    audit entry sealing the account (app.ledger.row_hashes), or verification would rightly
    report the backdated role as an edit behind the app's back."""
    from datetime import timedelta

    from app.db.locking import ledger_write
    from app.ledger import audit
    from app.ledger.audit import Actor
    from models import User, utcnow

    with ledger_write(session):
        user = session.get(User, user_id)
        user.role_since = utcnow() - timedelta(days=days)
        audit.append(session, Actor("test", role="admin"), "test.role_dated", "user", user_id,
                     {"days": days}, sealed=[user])


def sign_in(client, email: str, password: str = PASSWORD):
    return submit(client, "/login", {"email": email, "password": password})


def submit(client, page_path: str, data: dict, action: str | None = None, **kw):
    """GET the page and post its own form (the one posting to `action`, default the page):
    the form's hidden fields and inputs as shown, with `data` typed into controls it has."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    form = page_form(page.get_data(as_text=True), page_path, action)
    assert form.token, f"the form posting to {form.action} has no CSRF token"
    unknown = set(data) - form.names
    assert not unknown, f"the form posting to {form.action} has no control named {sorted(unknown)}"
    target = _path(urljoin(page_path, action or page_path))
    return client.post(target if form.posts_to(target) else form.action,
                       data={**form.fields, **data}, **kw)


def submit_shown(client, page_path: str, html: str, data: dict, action: str | None = None,
                 **kw):
    """Post the form of a page already fetched (`html`) as `submit` does, without fetching
    it again: a page that shows something once (a second factor's new key) must be answered
    with the form that came with it."""
    form = page_form(html, page_path, action)
    assert form.token, f"the form posting to {form.action} has no CSRF token"
    unknown = set(data) - form.names
    assert not unknown, f"the form posting to {form.action} has no control named {sorted(unknown)}"
    target = _path(urljoin(page_path, action or page_path))
    return client.post(target if form.posts_to(target) else form.action,
                       data={**form.fields, **data}, **kw)


def post_refused(client, page_path: str, action: str, data: dict, **kw):
    """POST to a form the page does not offer (the role may not), with the session's token, so
    a refusal shows the role check and not a missing token."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    return client.post(action, data={**data, "csrf_token": session_token(page.get_data(as_text=True))},
                       **kw)
