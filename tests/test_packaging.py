"""A wheel built from the repository installs and runs: `armslength init-db` migrates a new
database and the app renders its pages, with templates, static files and migrations taken
from the installed package (setup.py maps the top-level templates/ and migrations/ into it).

The wheel goes into a fresh virtual environment, run from a directory outside the repository,
so nothing can be imported from the checkout. Its dependencies are the ones this test runs
with (a .pth line to this interpreter's site-packages): pyproject.toml declares them for the
editable install and the wheel alike, and resolving them again would only re-download them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the build reads; the copy keeps build/ and *.egg-info out of the checkout.
SOURCES = ["pyproject.toml", "setup.py", "README.md", "app", "models", "policies", "templates",
           "migrations"]

RENDER = textwrap.dedent("""
    import json, sys
    import app
    from app import create_app
    flask_app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "x" * 40})
    client = flask_app.test_client()
    login, css = client.get("/login"), client.get("/static/style.css")
    print(json.dumps({"app": app.__file__, "login": login.status_code,
                      "form": 'name="csrf_token"' in login.get_data(as_text=True),
                      "css": css.status_code}))
""")


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # noqa: S603
    assert out.returncode == 0, f"{args}\n{out.stdout}\n{out.stderr}"
    return out


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_a_built_wheel_installs_migrates_and_renders_pages(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
        str(source))
    (wheel,) = (tmp_path / "dist").glob("armslength-*.whl")

    packaged = {name for name in zipfile.ZipFile(wheel).namelist()}
    for folder, inside in (("templates", "app/templates"), ("migrations", "app/migrations"),
                           ("app/static", "app/static")):
        expected = {f"{inside}/{name}" for name in files_under(ROOT / folder)}
        assert expected <= packaged, sorted(expected - packaged)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
        str(wheel))
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                .stdout.strip())
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "zz_dependencies.pth").write_text("\n".join(sorted(here)) + "\n")

    elsewhere = tmp_path / "elsewhere"  # cwd outside the checkout: nothing imports from it
    elsewhere.mkdir()
    database = f"sqlite:///{tmp_path / 'installed.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POLICY_FILE")}
    env["DATABASE_URL"] = database
    init = run(str(venv / "bin" / "armslength"), "init-db", cwd=elsewhere, env=env)
    assert "database ready" in init.stdout

    page = json.loads(run(str(python), "-c", RENDER, database, cwd=elsewhere, env=env).stdout)
    assert Path(page["app"]).is_relative_to(site), page["app"]
    assert page == {"app": page["app"], "login": 200, "form": True, "css": 200}
