"""Sign-in, sign-out, lockout and CSRF on the staff pages."""

from tests.webtools import csrf_token, make_user, sign_in


def test_staff_home_needs_sign_in(client):
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_sign_in_then_home_shows_headroom(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = sign_in(client, "ana@example.org")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    page = client.get("/staff/")
    assert page.status_code == 200
    assert "Headroom" in page.get_data(as_text=True)


def test_wrong_password_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = sign_in(client, "ana@example.org", "wrong password!!")
    assert response.status_code == 401
    assert "Email or password is wrong." in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_five_failures_lock_the_account_even_for_the_right_password(app, client):
    make_user(app, "ana@example.org", "viewer")
    for _ in range(5):
        assert sign_in(client, "ana@example.org", "wrong password!!").status_code == 401
    response = sign_in(client, "ana@example.org")
    assert response.status_code == 401
    assert "Too many failed attempts" in response.get_data(as_text=True)


def test_login_form_without_csrf_token_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = client.post("/login", data={"email": "ana@example.org",
                                           "password": "long enough password"})
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_sign_out_kills_copies_of_the_session_cookie(app, client):
    make_user(app, "ana@example.org", "viewer")
    sign_in(client, "ana@example.org")
    stolen = client.get_cookie("session").value
    home = client.get("/staff/")
    response = client.post("/logout", data={"csrf_token": csrf_token(home.get_data(as_text=True))})
    assert response.status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/staff/").status_code == 302


def test_open_redirect_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    page = client.get("/login")
    response = client.post("/login?next=//evil.example/", data={
        "email": "ana@example.org", "password": "long enough password",
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/staff/"


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
