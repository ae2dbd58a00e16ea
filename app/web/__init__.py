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


@bp.get("/favicon.ico")
@public
def favicon():
    """Browsers ask for /favicon.ico whatever the page links; send them to the icon we have."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


def register_web(app: Flask) -> None:
    from app.web import (
        account,
        acknowledgements,
        admin,
        audit,
        auth,
        campaigns,
        changes,
        compliance,
        contacts,
        disclosures,
        donate,
        donor_identity,  # noqa: F401 - its routes join the donors blueprint
        donors,
        exports,
        finance,
        funding,
        gifts,
        imports,
        inkind,
        jobs,
        online,
        organizations,
        pledges,
        public_support,
        recurring,
        relationships,
        reports,
        review,
        segments,
        staff,
    )
    from app.web.filters import register_filters

    login_manager.init_app(app)
    register_filters(app)
    register_nav(app)
    app.register_blueprint(bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(donate.bp)
    app.register_blueprint(online.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(imports.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(gifts.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(changes.bp)
    app.register_blueprint(donors.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(organizations.bp)
    app.register_blueprint(pledges.bp)
    app.register_blueprint(recurring.bp)
    app.register_blueprint(inkind.bp)
    app.register_blueprint(disclosures.bp)
    app.register_blueprint(disclosures.staff_bp)
    app.register_blueprint(funding.bp)
    app.register_blueprint(funding.staff_bp)
    app.register_blueprint(acknowledgements.bp)
    app.register_blueprint(compliance.bp)
    app.register_blueprint(finance.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(public_support.bp)
    app.register_blueprint(relationships.bp)
    app.register_blueprint(segments.bp)
