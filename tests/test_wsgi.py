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
           "SECRET_KEY": "wsgi-test-" + "z" * 40, "ORG_TIMEZONE": "UTC"}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "served"
