"""The relationship beyond money over the API: interactions, tasks, contact preferences and
the giving summary (app/api/contacts.py)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from models import AuditEntry
from tests.api.helpers import errors_of
from tests.builders import gift, ok, person


def _today() -> date:
    return date.today()  # the test app's ORG_TIMEZONE is UTC; dates here are far from midnight


def test_interactions_are_recorded_on_the_timeline_newest_first(api_as, db):
    fundraiser = api_as("fundraiser")
    donor = person(fundraiser, "Rosa Timeline")
    first = ok(fundraiser.post(f"/donors/{donor['id']}/interactions", {
        "kind": "call", "occurred_on": "2026-03-02", "summary": "Thanked for the spring gift"}))
    second = ok(fundraiser.post(f"/donors/{donor['id']}/interactions", {
        "kind": "meeting", "occurred_on": "2026-05-10", "summary": "Lunch",
        "note": "Interested in the evaluations report."}))
    assert (second["kind"], second["author"], second["author_id"]) == (
        "meeting", "fundraiser@example.org", fundraiser.user_id)

    listed = ok(fundraiser.get(f"/donors/{donor['id']}/interactions"), 200)
    assert [i["id"] for i in listed["interactions"]] == [second["id"], first["id"]]
    assert listed["next_before_id"] is None
    page = ok(fundraiser.get(f"/donors/{donor['id']}/interactions?limit=1"), 200)
    assert [i["id"] for i in page["interactions"]] == [second["id"]]
    rest = ok(fundraiser.get(
        f"/donors/{donor['id']}/interactions?limit=1&before_id={page['next_before_id']}"), 200)
    assert [i["id"] for i in rest["interactions"]] == [first["id"]]

    # Audited without the free text (summaries and notes are personal data).
    entry = db.execute(select(AuditEntry).where(
        AuditEntry.action == "interaction.recorded",
        AuditEntry.entity_id == second["id"])).scalar_one()
    assert entry.data == {"donor_id": donor["id"], "kind": "meeting",
                          "occurred_on": "2026-05-10"}
    assert entry.actor_id == fundraiser.user_id


def test_interaction_input_is_checked_and_the_viewer_may_not_write(api_as):
    fundraiser = api_as("fundraiser")
    donor = person(fundraiser, "Checked Input")
    path = f"/donors/{donor['id']}/interactions"
    assert set(errors_of(fundraiser.post(path, {"kind": "telegram", "occurred_on": "2026-01-01",
                                                "summary": "x"}))) == {"kind"}
    assert set(errors_of(fundraiser.post(path, {"kind": "call", "occurred_on": "yesterday",
                                                "summary": "x"}))) == {"occurred_on"}
    assert set(errors_of(fundraiser.post(path, {"kind": "call", "occurred_on": "2026-01-01",
                                                "summary": ""}))) == {"summary"}
    assert fundraiser.post("/donors/999999/interactions", {
        "kind": "call", "occurred_on": "2026-01-01", "summary": "x"}).status_code == 404
    viewer = api_as("viewer")
    assert viewer.post(path, {"kind": "call", "occurred_on": "2026-01-01",
                              "summary": "x"}).status_code == 403
    assert viewer.get(path).status_code == 200


def test_tasks_mine_by_default_done_once_and_for_an_active_assignee_only(api_as, db):
    fundraiser = api_as("fundraiser")
    finance = api_as("finance")
    donor = person(fundraiser, "Task Donor")
    soon = (_today() + timedelta(days=3)).isoformat()
    later = (_today() + timedelta(days=9)).isoformat()
    mine_later = ok(fundraiser.post("/tasks", {"title": "Send the report", "due_on": later,
                                               "donor_id": donor["id"]}))
    mine_soon = ok(fundraiser.post("/tasks", {"title": "Call back", "due_on": soon}))
    theirs = ok(fundraiser.post("/tasks", {"title": "Check the receipt", "due_on": soon,
                                           "assignee_id": finance.user_id,
                                           "donor_id": donor["id"]}))
    assert (mine_soon["assignee_id"], mine_soon["created_by_id"], mine_soon["status"]) == (
        fundraiser.user_id, fundraiser.user_id, "open")

    mine = ok(fundraiser.get("/tasks"), 200)["tasks"]
    assert [t["id"] for t in mine] == [mine_soon["id"], mine_later["id"]]  # soonest due first
    assert [t["id"] for t in ok(finance.get("/tasks"), 200)["tasks"]] == [theirs["id"]]
    about = ok(fundraiser.get(f"/tasks?donor_id={donor['id']}"), 200)["tasks"]
    assert {t["id"] for t in about} == {mine_later["id"], theirs["id"]}

    done = ok(finance.post(f"/tasks/{theirs['id']}/complete"), 200)
    assert (done["status"], done["done_by_id"]) == ("done", finance.user_id)
    assert done["done_at"] is not None
    again = finance.post(f"/tasks/{theirs['id']}/complete")
    assert again.status_code == 409
    assert ok(finance.get("/tasks"), 200)["tasks"] == []
    assert [t["id"] for t in ok(finance.get("/tasks?status=done"), 200)["tasks"]] == [theirs["id"]]
    assert fundraiser.post("/tasks/999999/complete").status_code == 404

    assert set(errors_of(fundraiser.post("/tasks", {"title": "x", "due_on": soon,
                                                    "assignee_id": 999999}))) == {"assignee_id"}
    assert set(errors_of(fundraiser.post("/tasks", {"title": "x", "due_on": soon,
                                                    "donor_id": 999999}))) == {"donor_id"}
    actions = db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "task").order_by(AuditEntry.id)).scalars().all()
    assert actions == ["task.created"] * 3 + ["task.done"]


def test_contact_preferences_are_set_audited_and_shown_on_the_donor(api_as, db):
    fundraiser = api_as("fundraiser")
    donor = person(fundraiser, "Quiet Donor")
    assert (donor["do_not_contact"], donor["email_ok"], donor["post_ok"], donor["phone_ok"]) == (
        False, True, True, True)
    path = f"/donors/{donor['id']}/contact-preferences"
    set_ = ok(fundraiser.put(path, {"do_not_contact": False, "email_ok": True, "post_ok": False,
                                    "phone_ok": False}), 200)
    assert set_ == {"donor_id": donor["id"], "do_not_contact": False, "email_ok": True,
                    "post_ok": False, "phone_ok": False}
    ok(fundraiser.put(path, {"do_not_contact": True}), 200)
    shown = ok(fundraiser.get(f"/donors/{donor['id']}"), 200)
    assert (shown["do_not_contact"], shown["post_ok"]) == (True, True)
    entries = db.execute(select(AuditEntry).where(
        AuditEntry.action == "donor.contact_preferences").order_by(AuditEntry.id)).scalars().all()
    assert [e.data["after"]["do_not_contact"] for e in entries] == [False, True]
    assert entries[0].data["before"] == {"do_not_contact": False, "email_ok": True,
                                         "post_ok": True, "phone_ok": True}
    # The same preferences again change nothing and write no entry.
    ok(fundraiser.put(path, {"do_not_contact": True}), 200)
    assert len(db.execute(select(AuditEntry).where(
        AuditEntry.action == "donor.contact_preferences")).scalars().all()) == 2
    assert api_as("viewer").put(path, {"do_not_contact": False}).status_code == 403


def test_giving_summary_counts_accepted_cash_net_of_refunds_by_year(api_as):
    fundraiser = api_as("fundraiser")
    finance = api_as("finance")
    donor = person(fundraiser, "Steady Giver")
    today = _today()
    this_year = date(today.year, 1, 2)
    last_year = date(today.year - 1, 6, 1)
    years_ago = date(today.year - 3, 6, 1)
    gift(fundraiser, donor["id"], "100.00", years_ago)
    gift(fundraiser, donor["id"], "250.00", last_year)
    big = gift(fundraiser, donor["id"], "400.00", this_year)
    ok(finance.post(f"/gifts/{big['id']}/refund", {"amount": "150.00",
                                                     "refunded_on": this_year.isoformat(),
                                                     "reason": "Donor asked"}))
    summary = ok(fundraiser.get(f"/donors/{donor['id']}/giving"), 200)
    assert summary == {
        "currency": "USD", "lifetime": "600.00", "this_year": "250.00", "last_year": "250.00",
        "largest": "250.00", "gift_count": 3, "first_gift_on": years_ago.isoformat(),
        "last_gift_on": this_year.isoformat()}
    nobody = person(fundraiser, "No Gifts Yet")
    assert ok(fundraiser.get(f"/donors/{nobody['id']}/giving"), 200) == {
        "currency": "USD", "lifetime": "0.00", "this_year": "0.00", "last_year": "0.00",
        "largest": "0.00", "gift_count": 0, "first_gift_on": None, "last_gift_on": None}


def test_a_merged_record_takes_no_interactions_and_its_tasks_move_to_the_survivor(api_as):
    reviewer = api_as("reviewer")
    fundraiser = api_as("fundraiser")
    survivor = person(fundraiser, "Morgan Merge", email="morgan@example.org")
    duplicate = ok(fundraiser.post("/donors", {"type": "person", "name": "Morgan Merge",
                                               "email": "morgan.merge@example.org"}))
    task = ok(fundraiser.post("/tasks", {"title": "Thank Morgan", "donor_id": duplicate["id"],
                                         "due_on": (_today() + timedelta(days=1)).isoformat()}))
    call = ok(fundraiser.post(f"/donors/{duplicate['id']}/interactions", {
        "kind": "call", "occurred_on": "2026-02-01", "summary": "Left a message"}))
    ok(reviewer.post(f"/donors/{survivor['id']}/merge", {"duplicate_id": duplicate["id"]}), 200)
    moved = ok(fundraiser.get(f"/tasks?donor_id={survivor['id']}"), 200)["tasks"]
    assert [t["id"] for t in moved] == [task["id"]]
    timeline = ok(fundraiser.get(f"/donors/{survivor['id']}/interactions"), 200)
    assert [i["id"] for i in timeline["interactions"]] == [call["id"]]
    refused = fundraiser.post(f"/donors/{duplicate['id']}/interactions", {
        "kind": "call", "occurred_on": "2026-02-02", "summary": "Again"})
    assert errors_of(refused) == {"donor_id": [
        f"donor {duplicate['id']} was merged into donor {survivor['id']}; use that record"]}
