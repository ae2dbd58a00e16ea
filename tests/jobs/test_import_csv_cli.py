"""`armslength import-csv FILE...`: the same import as the staff page, from the server's
command line, with a progress bar; exit status 1 and the bad rows when anything is wrong."""

from __future__ import annotations

from sqlalchemy import func, select

from models import AuditEntry, Donor, Gift, Job
from tests.jobs.test_jobs import DONORS, gift_count, gifts_csv


def run(app, *args: str):
    """The command's result; its .output holds standard output and error together."""
    return app.test_cli_runner().invoke(args=list(args))


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_dry_run_then_import_then_refuse_the_same_files(app, db, tmp_path):
    donors = write(tmp_path, "people.csv", DONORS)
    gifts = write(tmp_path, "money.csv", gifts_csv(40))

    dry = run(app, "import-csv", gifts, donors, "--dry-run")  # any order: kinds from headers
    assert dry.exit_code == 0, dry.output
    assert "every row is good; would import 2 donors, 40 gifts; nothing was written" in dry.output
    assert gift_count(db) == 0

    done = run(app, "import-csv", donors, gifts)
    assert done.exit_code == 0, done.output
    assert "2 donors, 0 affiliations, 40 gifts (40 accepted, 0 held, 0 rejected)" in done.output
    assert gift_count(db) == 40
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "import.completed")).scalar_one()
    assert entry.actor == "cli"
    assert entry.data["files"] == {"donors": "people.csv", "gifts": "money.csv"}
    job = db.get(Job, entry.data["job_id"])
    assert (job.kind, job.status, job.started_by) == ("csv_import", "done", "cli")
    db.rollback()

    again = run(app, "import-csv", donors, gifts)
    assert again.exit_code == 1
    assert f"these files were imported already (job {job.id}); nothing was started" in again.output
    assert gift_count(db) == 40


def test_bad_rows_exit_1_with_their_lines_and_nothing_written(app, db, tmp_path):
    donors = write(tmp_path, "donors.csv", DONORS)
    gifts = write(tmp_path, "gifts.csv", gifts_csv(3) + "G9,NOPE,5.00,USD,2025-01-01\n")
    result = run(app, "import-csv", donors, gifts)
    assert result.exit_code == 1
    assert "error: 1 bad row: nothing was imported" in result.output
    assert "gifts.csv line 5: donor_external_id: no donor 'NOPE'" in result.output
    assert gift_count(db) == 0
    assert db.execute(select(func.count()).select_from(Donor)).scalar_one() == 0


def test_a_file_that_is_no_import_file_is_a_usage_error(app, tmp_path):
    path = write(tmp_path, "notes.csv", "what,ever\n1,2\n")
    result = run(app, "import-csv", path)
    assert result.exit_code == 2
    assert "does not name the columns of a donors, affiliations or gifts file" in result.output


def test_two_files_of_one_kind_are_refused(app, tmp_path):
    one = write(tmp_path, "a.csv", DONORS)
    two = write(tmp_path, "b.csv", DONORS)
    result = run(app, "import-csv", one, two)
    assert result.exit_code == 2 and "two donors files" in result.output


def test_gifts_go_through_the_policy(app, db, tmp_path, api):
    """The one door: a gift at or above the large-gift threshold is held, as from the page."""
    donors = write(tmp_path, "donors.csv", DONORS)
    gifts = write(tmp_path, "gifts.csv", "external_ref,donor_external_id,amount,currency,received_on\n"
                                         "BIG1,D1,2000000.00,USD,2025-03-01\n")
    result = run(app, "import-csv", donors, gifts)
    assert result.exit_code == 0, result.output
    assert "(0 accepted, 1 held, 0 rejected)" in result.output
    assert "BIG1: hold:" in result.output
    assert db.execute(select(Gift.status)).scalar_one() == "held"
