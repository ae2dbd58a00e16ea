"""What gunicorn serves (Procfile: `gunicorn app.wsgi:app`): the app, configured from the
environment, in production mode unless ARMSLENGTH_ENV says otherwise, with the objects made
at startup frozen out of the garbage collector.

Why production by default: this module is what a deployment serves. In development mode a
missing SECRET_KEY becomes a random key per process, so with several workers a cookie signed
by one worker is refused by the others (most sign-ins failed), and cookies lack the Secure
flag. In production the app refuses to start without a strong SECRET_KEY instead (app.config).
`armslength run` (the development server) keeps development as its default.

Why gc.freeze(): a full collection walks every object the collector tracks, and most of
them (SQLAlchemy's mappers and compiled caches, pydantic's schemas, the templates) are made
at startup and live as long as the worker. On the compliance dashboard of a
1,000,000-gift ledger such collections came as pauses of about 90 ms on random requests
(its p95 was 172 ms, its median 75 ms; with the startup objects frozen, p95 78 ms:
docs/performance.md). Frozen objects are never collected, which costs nothing for objects
that live until the worker exits anyway; garbage made while serving is collected as
before.
"""

import gc
import os

from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app

app = create_app({"ARMSLENGTH_ENV": os.environ.get("ARMSLENGTH_ENV", "production")})
if app.config["TRUSTED_PROXIES"]:
    # Behind the buffering proxy a deployment needs (docs/deployment.md), every request
    # comes from the proxy: take the client's address and scheme from what it forwards.
    proxies = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
gc.collect()  # what startup left as garbage is collected, not frozen for good
gc.freeze()
