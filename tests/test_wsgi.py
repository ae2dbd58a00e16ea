"""app.wsgi, what gunicorn serves (Procfile): configured from the environment, startup
objects frozen out of the garbage collector. In a child process: freezing this test
process's objects would keep them for the rest of the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import gc
import app.wsgi
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
client = app.wsgi.app.test_client()
assert client.get("/api/v1/openapi.json").status_code == 200
assert client.get("/staff/compliance").status_code in (302, 401)  # staff pages need login
print("served")
"""


def test_the_served_app_comes_from_the_environment_with_startup_objects_frozen(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.sqlite3'}",
           "SECRET_KEY": "wsgi-test-" + "z" * 40, "ORG_TIMEZONE": "UTC",
           "AUDIT_SEAL_KEY": "wsgi-seal-" + "s" * 40}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "served"


PROXIED_CHILD = """
from flask import request
import app.wsgi
served = app.wsgi.app
assert served.config["ARMSLENGTH_ENV"] == "production"
served.add_url_rule("/client", "client", lambda: f"{request.remote_addr} {request.scheme}")
answer = served.test_client().get(
    "/client", environ_base={"REMOTE_ADDR": "127.0.0.1"},
    headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"})
print(answer.get_data(as_text=True))
"""


def _served_client(tmp_path, **settings) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"ARMSLENGTH_ENV", "TRUSTED_PROXIES"}}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.sqlite3'}",
                "SECRET_KEY": "wsgi-test-" + "z" * 40, "ORG_TIMEZONE": "UTC",
                "AUDIT_SEAL_KEY": "wsgi-seal-" + "s" * 40, **settings})
    out = subprocess.run([sys.executable, "-c", PROXIED_CHILD], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_behind_one_trusted_proxy_the_client_is_the_address_the_proxy_forwards(tmp_path):
    assert _served_client(tmp_path, TRUSTED_PROXIES="1") == "203.0.113.9 https"


def test_without_trusted_proxies_forwarding_headers_are_ignored(tmp_path):
    # Anyone can send X-Forwarded-For: believing it would let a client pick its own address.
    assert _served_client(tmp_path) == "127.0.0.1 http"
