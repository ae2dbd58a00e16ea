"""The Alembic migrations build exactly the schema the models describe.

Run on SQLite and, with TEST_DATABASE_URL set, on PostgreSQL: a model change
without its migration (or a migration that drifts from the models) fails here.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import models
from app.cli import MIGRATIONS
from tests.empty_db import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def empty_engine(request, tmp_path):
    with empty_database(request.param, tmp_path, "migrations") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def _config(engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _schema_diff(engine) -> list[str]:
    """compare_metadata's differences, one readable line each ("add_table stripe_event")."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [_describe(item) for item in compare_metadata(context, models.metadata)]


def _assert_schema_matches_models(engine) -> None:
    diff = _schema_diff(engine)
    assert diff == [], (
        "the schema the migrations build differs from the models; add a migration for:\n  "
        + "\n  ".join(diff)
    )


def _describe(item) -> str:
    if isinstance(item, list):  # modify_* operations on one column come grouped
        return "; ".join(_describe(part) for part in item)
    op, *args = item
    names = [a if isinstance(a, str) else getattr(a, "name", None) for a in args]
    return " ".join([op, *(str(n) for n in names if n)])


def test_one_head():
    heads = ScriptDirectory.from_config(_config(None)).get_heads()
    assert len(heads) == 1, f"migration history has several heads: {heads}"


def test_migrations_give_the_models_schema(empty_engine):
    command.upgrade(_config(empty_engine), "head")
    _assert_schema_matches_models(empty_engine)


def test_upgrade_is_idempotent_and_downgrade_reverses_it(empty_engine):
    engine = empty_engine
    config = _config(engine)
    command.upgrade(config, "head")
    command.upgrade(config, "head")  # nothing left to do
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    _assert_schema_matches_models(engine)


def test_0002_fills_each_days_refunds_as_the_ledger_keeps_them(app, api):
    """The upgrade that added funding_day's refunded columns fills them from the gifts and
    refunds already recorded: the same figures the ledger keeps as refunds are recorded."""
    from sqlalchemy import select, text

    from models import FundingDay
    from tests.builders import World, gift

    world = World(api)
    joint = {"attributions": [{"donor_id": world.employee["id"], "fraction": "0.333333"},
                              {"donor_id": world.donor["id"], "fraction": "0.666667"}]}
    refunded = [
        gift(api, world.employee["id"], "100.00", "2026-01-10"),
        gift(api, world.donor["id"], "70.01", "2026-01-10"),
        gift(api, world.donor["id"], "30.00", "2026-02-01", **joint),
        gift(api, world.donor["id"], "55.00", "2026-02-03", currency="EUR", fx_rate="1.0837"),
    ]
    gift(api, world.donor["id"], "500.00", "2026-02-01")  # no refund
    for made, amounts in zip(refunded, (["40.00", "60.00"], ["0.01"], ["10.00"], ["55.00"]),
                             strict=True):
        for amount in amounts:
            assert api.post(f"/gifts/{made['id']}/refund", {"amount": amount}).status_code == 201

    engine = app.extensions["armslength"].engine
    columns = select(FundingDay.day, FundingDay.refunded_minor, FundingDay.refunded_lab_minor)
    with engine.connect() as conn:
        kept = conn.execute(columns.order_by(FundingDay.day)).all()
    assert any(lab for _day, _total, lab in kept) and any(total for _day, total, _lab in kept)

    config = _config(engine)
    command.stamp(config, "head")
    command.downgrade(config, "0001")
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(columns.order_by(FundingDay.day)).all() == kept
        assert conn.execute(text("SELECT count(*) FROM funding_day")).scalar_one() == len(kept)


def test_0004_fills_the_funding_mix_as_the_ledger_keeps_it(app, api):
    """The upgrade that added funding_mix_day fills it from the gifts already recorded: the
    same sums the ledger keeps as gifts are recorded, reviewed and donors recategorised."""
    from sqlalchemy import select

    from app.ledger.audit import Actor
    from app.ledger.parties import update_donor
    from models import FundingMixDay
    from models.schemas import DonorUpdate
    from tests.builders import World, gift, org_donor

    world = World(api)
    foundation = org_donor(api, "Open Foundation", category="foundation")
    company = org_donor(api, "Plain Company", category="company")
    gift(api, foundation["id"], "1000.00", "2026-01-10")
    gift(api, company["id"], "250.00", "2026-01-10")
    gift(api, world.donor["id"], "90.00", "2026-02-01", attributions=[
        {"donor_id": world.donor["id"], "fraction": "0.666667"},
        {"donor_id": foundation["id"], "fraction": "0.333333"}])
    gift(api, world.donor["id"], "40.00", "2026-02-02")  # an individual's: no credit
    with app.extensions["armslength"].sessions() as session:
        update_donor(session, company["id"], DonorUpdate(name="Plain Company", category="other"),
                     Actor("test", role="admin"))

    engine = app.extensions["armslength"].engine
    rows = select(FundingMixDay.day, FundingMixDay.category, FundingMixDay.credited_ppm)
    with engine.connect() as conn:
        kept = conn.execute(rows.order_by(FundingMixDay.day, FundingMixDay.category)).all()
    assert {(str(day), category) for day, category, credited in kept if credited} == {
        ("2026-01-10", "foundation"), ("2026-01-10", "other"), ("2026-02-01", "foundation")}

    config = _config(engine)
    command.stamp(config, "head")
    command.downgrade(config, "0003")
    command.upgrade(config, "head")
    with engine.connect() as conn:
        again = conn.execute(rows.order_by(FundingMixDay.day, FundingMixDay.category)).all()
    assert [row for row in again if row[2]] == [row for row in kept if row[2]]


def test_0020_keeps_one_normalised_email_and_the_duplicate_refusal(app, api):
    """0020 drops donor.email_normalized for email_key, the same value: every donor's key is
    recomputed from its e-mail (a row written around the ledger without it gets it), the
    downgrade gives the old column back filled, and afterwards a second person with an
    address on file is still refused."""
    from sqlalchemy import select, text, update

    from models import Donor
    from tests.builders import person

    ana = person(api, "Ana Ruiz", "  Ana.Ruiz@Example.org ")
    nobody = person(api, "No Mail", None)
    engine = app.extensions["armslength"].engine
    config = _config(engine)
    command.stamp(config, "head")
    before = ScriptDirectory.from_config(config).get_revision("0020").down_revision
    command.downgrade(config, before)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id, email_normalized FROM donor ORDER BY id")).all() \
            == [(ana["id"], "ana.ruiz@example.org"), (nobody["id"], None)]
        # As a bulk load that filled only the old column left it.
        conn.execute(update(Donor).values(email_key=None))
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(select(Donor.id, Donor.email_key).order_by(Donor.id)).all() == [
            (ana["id"], "ana.ruiz@example.org"), (nobody["id"], None)]
        assert "email_normalized" not in {c["name"] for c in inspect(conn).get_columns("donor")}
    refused = api.post("/donors", {"type": "person", "name": "Ana R.",
                                   "email": "ANA.RUIZ@example.org"})
    assert (refused.status_code, refused.get_json()["existing_donor_id"]) == (409, ana["id"])


def test_0032_links_stripe_gifts_recorded_before_it_to_their_donation(app, api, db):
    """0032 links each Stripe gift already recorded to the online donation its description
    names ("..., form #N"), when that donation exists; other gifts stay unlinked."""
    from sqlalchemy import text

    from models import OnlineDonation
    from tests.builders import gift, person

    donor = person(api, "Mia Monthly", "mia@example.org")
    donation = OnlineDonation(donor_id=donor["id"], payer_donor_id=donor["id"], amount_minor=2000,
                              currency="USD", frequency="monthly", policy_version="test",
                              subscription_id="sub_old", state="active")
    db.add(donation)
    db.commit()
    form = f"Online donation (monthly) through Stripe, form #{donation.id}"
    paid = [gift(api, donor["id"], "20.00", day, method="stripe", description=form)["id"]
            for day in ("2026-01-05", "2026-02-05")]
    gift(api, donor["id"], "20.00", "2026-02-06", method="stripe",
         description="Online donation (once) through Stripe, form #999999")
    gift(api, donor["id"], "20.00", "2026-02-07", method="check", description=form)
    engine = app.extensions["armslength"].engine
    config = _config(engine)
    command.stamp(config, "head")
    command.downgrade(config, ScriptDirectory.from_config(config).get_revision("0032").down_revision)
    command.upgrade(config, "head")
    with engine.connect() as conn:
        links = conn.execute(text("SELECT donation_id, gift_id FROM online_donation_gift "
                                  "ORDER BY gift_id")).all()
        kept = conn.execute(text("SELECT failed_payments, collection_paused FROM online_donation"
                                 )).one()
    assert links == [(donation.id, paid[0]), (donation.id, paid[1])]
    assert (kept[0], bool(kept[1])) == (0, False)


def test_0027_sets_the_lab_side_flag_and_reseals_the_roster_keyed(app, api, api_as):
    """0027 sets donor.possibly_covered from the affiliations already recorded, and seals
    every roster entry anew: the plain seal of what the policy reads and a keyed seal of who
    the person is, for each row that still matches the plain seal of all its columns that
    the app wrote before. A row edited behind the app's back before the upgrade is not
    laundered: it stays a finding."""
    from sqlalchemy import select, text

    from app.ledger import row_hashes
    from app.ledger.row_sealing import append_migration_entry
    from models import Donor, RosterEntry
    from tests.builders import affiliate, ok, organization, person
    from tests.tampering import tamper

    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp, plain = person(api, "Morgan Chen"), person(api, "Ana Ruiz")
    affiliate(api, vp["id"], lab["id"], senior=True, title="Vice President")
    roster = ("name,title,organisation,start,end,source\n"
              "Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,leadership page\n"
              "Riley Park,Head of Policy,Halcyon Labs,2023-05-01,,press release\n")
    ok(api_as("reviewer").client.post("/api/v1/rosters", data=roster.encode(), headers={
        **api_as("reviewer").headers, "Content-Type": "text/csv"}))
    assert ok(api.get("/audit/verify"), 200)["ok"] is True

    engine = app.extensions["armslength"].engine
    config = _config(engine)
    command.stamp(config, "head")
    before = ScriptDirectory.from_config(config).get_revision("0027").down_revision
    command.downgrade(config, before)
    # The roster as the app sealed it before 0027: one plain seal of every column (the
    # migration's own definition of it); then Riley renamed behind the app's back.
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "m0027", MIGRATIONS / "versions" / "0027_lab_side_flag_roster_keyed_seal.py")
    m0027 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0027)
    old = m0027._ROSTER_BEFORE
    with engine.begin() as conn:
        rows = conn.execute(select(*row_hashes.read_columns(old)).order_by(RosterEntry.id)).all()
        append_migration_entry(conn, "test", "roster.imported", {}, [
            [old.table, row[0], row_hashes.stored_row_hash(old, tuple(row))] for row in rows])
        tamper(conn, "UPDATE roster_entry SET name = 'R. Parks' WHERE name = 'Riley Park'")
    command.upgrade(config, "head")

    with engine.connect() as conn:
        flags = dict(conn.execute(select(Donor.id, Donor.possibly_covered)).all())
        riley = conn.execute(select(RosterEntry.id).where(RosterEntry.name == "R. Parks")
                             ).scalar_one()
        resealed = conn.execute(text(
            "SELECT count(*) FROM audit_entry WHERE action = 'ledger.rows_resealed'")).scalar_one()
    assert (flags[vp["id"]], flags[plain["id"]]) == (True, False)
    assert resealed == 1
    report = ok(api.get("/audit/verify"), 200)
    # Riley's row: its plain seal is still the pre-upgrade one over every column, and its
    # keyed seal the one this test's import made before the rename. Avery's was sealed
    # anew both ways and verifies.
    assert {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]} == {
        ("roster_entry", riley, "content differs"),
        ("roster_entry.identity", riley, "content differs")}
