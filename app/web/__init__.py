"""Staff and public pages. (The staff app grows here; see issue 3.)"""

from flask import Blueprint, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return render_template("index.html")
