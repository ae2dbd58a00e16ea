"""Background jobs: who may start, see and download them; imports that never run twice;
exports to a file; a real consumer (threads of this process, or `armslength worker`)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, update

from app import jobs
from models import AuditEntry, Gift, Job, User
from tests.builders import person
from tests.jobtools import finished_job_page, job_id_of, wait_for_job
from tests.test_deployment import ROOT, procfile_command
from tests.webtools import csrf_token, submit

DONORS = "external_id,type,name\nD1,person,Dana Donor\nD2,person,Eli Example\n"


def gifts_csv(count: int, prefix: str = "G") -> str:
    rows = [f"{prefix}{i},D{i % 2 + 1},{10 + i % 7}.00,USD,2025-0{1 + i % 9}-{1 + i % 28:02d}"
            for i in range(count)]
    return "external_ref,donor_external_id,amount,currency,received_on\n" + "\n".join(rows) + "\n"


def post_import(client, **files):
    page = client.get("/staff/import/")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "action": "import"}
    for kind, content in files.items():
        data[kind] = (io.BytesIO(content.encode()), f"{kind}.csv")
    return client.post("/staff/import/", data=data, content_type="multipart/form-data")


def gift_count(db) -> int:
    count = db.execute(select(func.count()).select_from(Gift)).scalar_one()
    db.rollback()
    return count


# --- the import job, end to end under the real consumer -------------------------------------

def test_an_import_job_shows_progress_and_result_as_page_and_json(web_as, db, job_worker):
    fundraiser = web_as("fundraiser")
    response = post_import(fundraiser, donors=DONORS, gifts=gifts_csv(30))
    job_id = job_id_of(response)
    view = wait_for_job(fundraiser, job_id)
    assert view["status"] == "done", view
    assert view["kind"] == "csv_import"
    assert view["started_by"] == "web:web-fundraiser@example.org"
    # The last phase's figures: 2 donors and 30 gifts written of 32 staged.
    assert view["phase"] == "importing" and view["progress"] == {"done": 32, "total": 32}
    assert view["result"]["result"]["gifts"] == 30
    assert view["result"]["result"]["outcomes"] == {"accept": 30}
    page = fundraiser.get(f"/staff/jobs/{job_id}").get_data(as_text=True)
    assert "2 donors, 0 affiliations and 30 gifts" in page
    assert 'http-equiv="refresh"' not in page  # finished: no more refreshing
    assert gift_count(db) == 30
    # The uploads (donors' personal data) are removed once the job has ended: just after
    # its "done" commits (with the import), so allow the worker a moment.
    inputs = jobs.job_dir(fundraiser.application, job_id) / "input"
    deadline = time.monotonic() + 10
    while inputs.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not inputs.exists()


def test_a_queued_job_page_refreshes_itself(web_as):
    """No worker here: the job stays queued, and its page says so and reloads (no script)."""
    fundraiser = web_as("fundraiser")
    job_id = job_id_of(post_import(fundraiser, donors=DONORS))
    page = fundraiser.get(f"/staff/jobs/{job_id}").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "Waiting for the worker" in page
    assert fundraiser.get(f"/staff/jobs/{job_id}.json").get_json()["status"] == "queued"


def test_only_who_could_import_sees_an_import_job(app, web_as, job_worker):
    fundraiser = web_as("fundraiser")
    job_id = job_id_of(post_import(fundraiser, donors=DONORS))
    assert wait_for_job(fundraiser, job_id)["status"] == "done"
    for role in ("viewer", "finance", "reviewer"):
        other = web_as(role)
        assert other.get(f"/staff/jobs/{job_id}").status_code == 403, role
        assert other.get(f"/staff/jobs/{job_id}.json").status_code == 403, role
        assert f"/staff/jobs/{job_id}\"" not in other.get("/staff/jobs/").get_data(as_text=True)
    assert web_as("admin").get(f"/staff/jobs/{job_id}").status_code == 200
    anonymous = app.test_client().get(f"/staff/jobs/{job_id}.json")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    assert fundraiser.get("/staff/jobs/99999").status_code == 404


def test_the_same_files_are_not_imported_twice(web_as, db, job_worker):
    fundraiser = web_as("fundraiser")
    files = {"donors": DONORS, "gifts": gifts_csv(5)}
    first = job_id_of(post_import(fundraiser, **files))
    assert wait_for_job(fundraiser, first)["status"] == "done"
    again = post_import(fundraiser, **files)
    assert again.status_code == 409
    assert f"These files were imported already (job {first})" in again.get_data(as_text=True)
    assert gift_count(db) == 5
    assert db.execute(select(func.count()).select_from(Job)).scalar_one() == 1


# --- the job function, run directly (as a queue delivering a job twice would) ---------------

def test_a_job_run_twice_imports_once(app, web_as, db):
    fundraiser = web_as("fundraiser")
    job_id = job_id_of(post_import(fundraiser, donors=DONORS, gifts=gifts_csv(12)))
    first = jobs.run_job(app, job_id)
    assert first.status == "done" and gift_count(db) == 12
    finished_at = first.finished_at
    second = jobs.run_job(app, job_id)
    assert second.status == "done" and second.finished_at == finished_at
    assert gift_count(db) == 12
    entries = db.execute(select(AuditEntry.data).where(AuditEntry.action == "import.completed")
                         ).scalars().all()
    assert [entry["job_id"] for entry in entries] == [job_id]


def test_a_job_whose_starter_lost_the_role_does_not_run(app, web_as, db):
    fundraiser = web_as("fundraiser")
    job_id = job_id_of(post_import(fundraiser, donors=DONORS, gifts=gifts_csv(3)))
    db.execute(update(User).where(User.email == "web-fundraiser@example.org")
               .values(role="viewer"))
    db.commit()
    job = jobs.run_job(app, job_id)
    assert job.status == "failed"
    assert job.error == "the account that started this job may no longer do this work"
    assert gift_count(db) == 0


def test_a_failed_import_job_keeps_its_bad_rows_and_writes_nothing(app, web_as, db, job_worker):
    fundraiser = web_as("fundraiser")
    bad = gifts_csv(3) + "G99,D1,-5.00,USD,2025-01-01\n"
    page = finished_job_page(fundraiser, post_import(fundraiser, donors=DONORS, gifts=bad))
    assert page.job["status"] == "failed"
    assert page.job["error"] == "1 bad row: nothing was imported"
    assert page.job["result"]["errors"][0]["line"] == 5
    assert "1 bad row: nothing was imported" in page.get_data(as_text=True)
    assert gift_count(db) == 0


# --- exports ---------------------------------------------------------------------------------

def test_an_export_job_writes_a_neutralised_file_that_only_exporters_download(api, app, web_as, db,
                                                                               job_worker):
    person(api, '=HYPERLINK("http://evil.example","x")', "evil@example.org")
    finance = web_as("finance")
    response = submit(finance, "/staff/export/", {"background": "1"},
                      action="/staff/export/donors.csv")
    job_id = job_id_of(response)
    view = wait_for_job(finance, job_id)
    assert view["status"] == "done", view
    assert view["result"]["rows"] == 1
    page = finance.get(f"/staff/jobs/{job_id}").get_data(as_text=True)
    assert f"/staff/jobs/{job_id}/download" in page

    download = finance.get(f"/staff/jobs/{job_id}/download")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert download.headers["Cache-Control"] == "no-store"
    assert "attachment" in download.headers["Content-Disposition"]
    text = download.get_data().decode("utf-8")
    download.close()
    assert "'=HYPERLINK(" in text and ",=HYPERLINK(" not in text

    # Kept outside the static folder, in a folder only the app's user may read.
    stored = jobs.output_path(app, db.get(Job, job_id))
    assert stored.is_file() and Path(app.static_folder) not in stored.parents
    assert stored.parent.parent.stat().st_mode & 0o077 == 0

    for role in ("fundraiser", "viewer", "reviewer"):
        other = web_as(role)
        assert other.get(f"/staff/jobs/{job_id}/download").status_code == 403, role
        assert other.get(f"/staff/jobs/{job_id}").status_code == 403, role
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "export.donors")).scalar_one()
    assert entry.data["job_id"] == job_id and entry.actor == "web:web-finance@example.org"


def test_a_fundraiser_cannot_start_an_export_job(web_as, db):
    fundraiser = web_as("fundraiser")
    page = fundraiser.get("/staff/import/")
    token = csrf_token(page.get_data(as_text=True))
    response = fundraiser.post("/staff/export/gifts.csv",
                               data={"csrf_token": token, "background": "1"})
    assert response.status_code == 403
    assert db.execute(select(func.count()).select_from(Job)).scalar_one() == 0


# --- the worker as the Procfile runs it --------------------------------------------------------

def test_the_procfile_worker_runs_an_import(app, web_as, db, database_url, tmp_path):
    """The Procfile's `worker:` line, run through a shell as a platform runs it: a process of
    its own on the same database and JOBS_DIR runs a job the import page queued (on SQLite
    and on PostgreSQL as the app's database)."""
    env = {k: v for k, v in os.environ.items() if k not in {"ARMSLENGTH_ENV", "TESTING"}}
    env.update({"DATABASE_URL": database_url, "JOBS_DIR": app.config["JOBS_DIR"],
                "SECRET_KEY": app.config["SECRET_KEY"], "ORG_TIMEZONE": "UTC",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(ROOT)})
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - our own Procfile line, run as a platform would
            ["/bin/sh", "-c", procfile_command("worker")], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        fundraiser = web_as("fundraiser")
        job_id = job_id_of(post_import(fundraiser, donors=DONORS, gifts=gifts_csv(20)))
        view = wait_for_job(fundraiser, job_id, timeout=120)
        assert view["status"] == "done", (view, log.read_text(errors="replace")[-3000:])
        assert gift_count(db) == 20
    finally:
        os.killpg(worker.pid, signal.SIGINT)  # huey's graceful stop: the job in hand ends first
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    output = log.read_text(errors="replace")
    assert "Huey consumer started" in output, output


# --- the JSON API -------------------------------------------------------------------------------

def test_the_api_reads_a_job_for_the_roles_that_could_do_its_work(web_as, api_as, client,
                                                                    job_worker):
    fundraiser = web_as("fundraiser")
    job_id = job_id_of(post_import(fundraiser, donors=DONORS, gifts=gifts_csv(4)))
    assert wait_for_job(fundraiser, job_id)["status"] == "done"
    body = api_as("fundraiser").get(f"/jobs/{job_id}")
    assert body.status_code == 200
    view = body.get_json()
    assert (view["id"], view["kind"], view["status"]) == (job_id, "csv_import", "done")
    assert view["result"]["result"]["gifts"] == 4
    assert view == fundraiser.get(f"/staff/jobs/{job_id}.json").get_json()
    refused = api_as("finance").get(f"/jobs/{job_id}")
    assert refused.status_code == 403 and "gifts.write" in refused.get_json()["error"]
    assert api_as("fundraiser").get("/jobs/424242").status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 401


def test_files_of_a_job_whose_worker_died_import_once_whichever_run_comes_first(app, web_as, db):
    """No consumer here: the jobs are run directly, in the order a crash and a retry give."""
    fundraiser = web_as("fundraiser")
    files = {"donors": DONORS, "gifts": gifts_csv(6)}
    first = job_id_of(post_import(fundraiser, **files))
    waiting = post_import(fundraiser, **files)
    assert waiting.status_code == 409
    assert f"These files were waiting to be imported (job {first})" in \
        waiting.get_data(as_text=True)
    # A worker took the job and died mid-import: its transaction rolled back, the row
    # says running. The same files may be uploaded again.
    db.execute(update(Job).where(Job.id == first).values(status="running"))
    db.commit()
    second = job_id_of(post_import(fundraiser, **files))
    assert jobs.run_job(app, second).status == "done"
    assert gift_count(db) == 6
    # The first job, queued again (armslength requeue-job), now finds every row recorded.
    retried = jobs.run_job(app, first)
    assert retried.status == "failed" and retried.error == "8 bad rows: nothing was imported"
    assert gift_count(db) == 6
