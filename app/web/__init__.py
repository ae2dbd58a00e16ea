"""Server-rendered pages: public ones and the staff app (sign-in required)."""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, render_template, url_for
from flask_login import current_user

from app.web.access import login_manager, public
from app.web.nav import register_nav

bp = Blueprint("web", __name__)


@bp.get("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    return render_template("index.html")


def register_web(app: Flask) -> None:
    from app.web import auth, staff
    from app.web.filters import register_filters

    login_manager.init_app(app)
    register_filters(app)
    register_nav(app)
    app.register_blueprint(bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(staff.bp)
