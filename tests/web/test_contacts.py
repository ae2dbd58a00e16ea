"""The donor's page as the home of the relationship: giving summary, timeline, tasks and
contact preferences, through the pages' own forms (app/web/contacts.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from models import Donor, Interaction, Task
from tests import builders as b
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit


def _donor_page(donor_id: int) -> str:
    return f"/staff/donors/{donor_id}"


def test_an_interaction_recorded_from_the_donor_page_shows_on_its_timeline(api, web_as, db):
    donor = b.person(api, "Rosa Timeline")
    fundraiser = web_as("fundraiser")
    page = _donor_page(donor["id"])
    response = submit(fundraiser, page, {
        "interaction-kind": "meeting", "interaction-occurred_on": "2026-05-10",
        "interaction-summary": "Lunch at the conference",
        "interaction-note": "Asked about the evaluations report."},
        action=f"/staff/donors/{donor['id']}/interactions/new")
    assert response.status_code == 302
    shown = text(fundraiser.get(page))
    timeline = re.search(r'<ol class="timeline plain" id="timeline">.*?</ol>', shown, re.S).group(0)
    assert "2026-05-10" in timeline and "Meeting" in timeline
    assert "Lunch at the conference" in timeline and "Asked about the evaluations report." in timeline
    assert "web-fundraiser@example.org" in timeline
    [item] = objects(db, select(Interaction))
    assert (item.donor_id, item.kind, item.occurred_on) == (donor["id"], "meeting", date(2026, 5, 10))
    assert [e.data["kind"] for e in audit(db, "interaction.recorded")] == ["meeting"]


def test_a_refused_interaction_comes_back_with_the_message_next_to_the_field(api, web_as, db):
    donor = b.person(api, "Empty Summary")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, _donor_page(donor["id"]), {
        "interaction-kind": "call", "interaction-summary": "  "},
        action=f"/staff/donors/{donor['id']}/interactions/new")
    assert response.status_code == 422
    body = text(response)
    assert re.search(r'name="interaction-summary".*?class="error"', body, re.S)
    assert objects(db, select(Interaction)) == []


def test_tasks_added_on_the_donor_page_are_mine_and_ticked_off_from_my_list(api, web_as, db):
    donor = b.person(api, "Task Donor")
    fundraiser = web_as("fundraiser")
    due = (date.today() + timedelta(days=5)).isoformat()
    response = submit(fundraiser, _donor_page(donor["id"]), {
        "task-title": "Send the annual report", "task-due_on": due},
        action=f"/staff/tasks/new?donor_id={donor['id']}")
    assert response.status_code == 302
    [task] = objects(db, select(Task))
    assert (task.title, task.donor_id, task.status, task.due_on.isoformat()) == (
        "Send the annual report", donor["id"], "open", due)
    assert "Send the annual report" in text(fundraiser.get(_donor_page(donor["id"])))

    mine = text(fundraiser.get("/staff/tasks"))
    assert "My tasks" in mine and "Send the annual report" in mine and "Task Donor" in mine
    # Another user's list does not show it.
    assert "Send the annual report" not in text(web_as("finance").get("/staff/tasks"))

    response = submit(fundraiser, "/staff/tasks", {}, action=f"/staff/tasks/{task.id}/done")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/tasks")
    [task] = objects(db, select(Task))
    assert task.status == "done" and task.done_at is not None
    assert 'id="no-tasks"' in text(fundraiser.get("/staff/tasks"))
    assert "Send the annual report" in text(fundraiser.get("/staff/tasks?status=done"))
    assert len(audit(db, "task.done")) == 1


def test_the_task_page_offers_colleagues_and_refuses_a_task_without_a_due_date(api, web_as, db):
    fundraiser = web_as("fundraiser")
    colleague = web_as("finance")  # noqa: F841 - an active account to assign to
    page = text(fundraiser.get("/staff/tasks/new"))
    assert "web-finance@example.org" in page
    response = submit(fundraiser, "/staff/tasks/new", {"task-title": "Check receipts",
                                                       "task-due_on": ""})
    assert response.status_code == 422
    assert objects(db, select(Task)) == []


def test_contact_preferences_are_changed_through_their_form(api, web_as, db):
    donor = b.person(api, "Quiet Donor")
    fundraiser = web_as("fundraiser")
    before = text(fundraiser.get(_donor_page(donor["id"])))
    assert re.search(r'id="contact-preferences">e-mail, post, phone', before)
    path = f"/staff/donors/{donor['id']}/contact"
    # Unticking a box: the form sends no value for it.
    page = fundraiser.get(path)
    assert page.status_code == 200
    response = submit(fundraiser, path, {"do_not_contact": "y"})
    assert response.status_code == 302
    after = text(fundraiser.get(_donor_page(donor["id"])))
    assert "<strong>Do not contact</strong>" in after
    [saved] = objects(db, select(Donor).where(Donor.id == donor["id"]))
    assert saved.do_not_contact is True
    [entry] = audit(db, "donor.contact_preferences")
    assert entry.data["after"]["do_not_contact"] is True


def test_the_giving_summary_on_the_donor_page(api, web_as):
    donor = b.person(api, "Steady Giver")
    today = date.today()
    b.gift(api, donor["id"], "100.00", date(today.year - 1, 3, 1))
    b.gift(api, donor["id"], "40.00", date(today.year, 1, 2))
    page = text(web_as("viewer").get(_donor_page(donor["id"])))
    summary = re.search(r'<dl class="facts" id="giving-summary">.*?</dl>', page, re.S).group(0)
    assert re.search(r"Lifetime accepted</dt><dd>140.00 USD", summary)
    assert re.search(rf"This year \({today.year}\)</dt><dd>40.00 USD", summary)
    assert re.search(rf"Last year \({today.year - 1}\)</dt><dd>100.00 USD", summary)
    assert re.search(r"Largest gift</dt><dd>100.00 USD", summary)
    assert f"First gift</dt><dd>{date(today.year - 1, 3, 1)}" in summary


def test_a_viewer_sees_the_relationship_but_cannot_write_it(api, web_as, db):
    donor = b.person(api, "Viewer Sees")
    viewer = web_as("viewer")
    page = text(viewer.get(_donor_page(donor["id"])))
    assert 'id="interaction-form"' not in page and 'id="task-form"' not in page
    assert viewer.get(f"/staff/donors/{donor['id']}/contact").status_code == 403
    for action, data in (
        (f"/staff/donors/{donor['id']}/interactions/new",
         {"interaction-kind": "call", "interaction-occurred_on": "2026-01-01",
          "interaction-summary": "x"}),
        (f"/staff/tasks/new?donor_id={donor['id']}", {"task-title": "x",
                                                      "task-due_on": "2030-01-01"}),
        (f"/staff/donors/{donor['id']}/contact", {"do_not_contact": "y"}),
    ):
        assert post_refused(viewer, "/staff/tasks", action, data).status_code == 403, action
    assert objects(db, select(Interaction)) == [] and objects(db, select(Task)) == []


def test_letters_sent_show_on_the_donor_page(api, web_as):
    donor = b.person(api, "Letter Reader", "letters@example.org")
    made = b.gift(api, donor["id"], "500.00", "2026-03-02")
    finance = web_as("finance")
    letter = f"/staff/acknowledgements/gifts/{made['id']}"
    response = submit(finance, letter, {"posted_to": "Letter Reader\n2 Main St"},
                      action=letter + "/posted")
    assert response.status_code == 302
    page = text(finance.get(_donor_page(donor["id"])))
    table = re.search(r'<table id="letters-sent">.*?</table>', page, re.S).group(0)
    assert f"gift {made['id']}" in table and "post" in table and "2 Main St" in table
    assert 'id="monthly-giving"' not in page and "No monthly gifts." in page


def test_an_odd_assignee_in_the_task_list_query_is_not_a_500(web_as):
    viewer = web_as("viewer")
    for odd in ("²", "99999999999999999999", "-1", "x"):
        assert viewer.get(f"/staff/tasks?assignee={odd}").status_code == 200, odd


def test_my_open_tasks_are_on_the_staff_home(api, web_as):
    donor = b.person(api, "Home Task Donor")
    fundraiser = web_as("fundraiser")
    due = (date.today() - timedelta(days=1)).isoformat()
    submit(fundraiser, _donor_page(donor["id"]), {"task-title": "Return the call",
                                                  "task-due_on": due},
           action=f"/staff/tasks/new?donor_id={donor['id']}")
    home = text(fundraiser.get("/staff/"))
    tasks = re.search(r'<ul class="plain" id="my-tasks">.*?</ul>', home, re.S).group(0)
    assert "Return the call" in tasks and "overdue" in tasks
    assert "No open task for you." in text(web_as("viewer").get("/staff/"))
