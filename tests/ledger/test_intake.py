"""The batch door (GiftIntake) decides exactly what the one-gift door (record_gift) decides.

The same gifts are recorded both ways on the same ledger: first one by one through
record_gift inside a ledger_batch that is then rolled back, then through a GiftIntake
with small chunks. Every decision (outcome, reasons, figures, policy version), every gift's
status and lab part, and the daily funding totals must be equal; the audit chain must
verify. The ledger holds lab employees (one senior, one in their cooling-off period), a
lab's corporate donor, foreign-currency gifts, in-kind support and refunds made long after
their gifts, and the gifts arrive partly out of date order, so the cap, the holds, the
rejections, back-dated decision points and late refunds are all exercised.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.db.locking import BatchAborted, ledger_batch, ledger_write
from app.errors import ValidationFailed
from app.ledger import funding, windows
from app.ledger.audit import Actor, verify_chain
from app.ledger.csv_import import KINDS, CsvImport, ImportAborted
from app.ledger.gifts import record_gift, refund_gift
from app.ledger.intake import GiftIntake, GiftRefused
from app.ledger.parties import add_affiliation, create_donor, create_organization
from app.ledger.row_verify import verify_rows
from models import Attribution, AuditEntry, Decision, FundingDay, FundingMixDay, Gift
from models.schemas import AffiliationCreate, DonorCreate, GiftCreate, OrganizationCreate

ACTOR = Actor("test:intake", role="admin")
FIRST = date(2024, 1, 1)


class _RollBack(Exception):
    """Raised inside a ledger_batch to undo it on purpose."""


def _world(db, policy) -> dict[str, int]:
    lab = create_organization(db, OrganizationCreate(name="Lab", covered_lab=True), ACTOR)
    ids = {}
    for name in ("ann", "bo", "cy", "di", "ed"):
        ids[name] = create_donor(db, DonorCreate(type="person", name=name), ACTOR).id
    for name, senior, end in (("emp1", False, None), ("emp2", False, None),
                              ("boss", True, None), ("former", False, date(2025, 3, 1))):
        ids[name] = create_donor(db, DonorCreate(type="person", name=name), ACTOR).id
        add_affiliation(db, ids[name], AffiliationCreate(
            organization_id=lab.id, senior_decision_maker=senior, start_date=date(2019, 1, 1),
            end_date=end), ACTOR, policy)
    ids["labco"] = create_donor(db, DonorCreate(type="organization", name="Lab Inc",
                                                organization_id=lab.id, category="company"),
                                ACTOR).id
    ids["fdn"] = create_donor(db, DonorCreate(type="organization", name="A Foundation",
                                              category="foundation"), ACTOR).id
    return ids


def _random_gift(rng: random.Random, ids: dict[str, int], ref: str, low: date,
                 high: date) -> GiftCreate:
    donor = rng.choice(["ann", "bo", "cy", "di", "ed", "emp1", "emp1", "emp2", "emp2",
                        "former", "boss", "labco", "fdn"])
    day = low + timedelta(days=rng.randrange((high - low).days + 1))
    amount = str(rng.choice([10, 50, 200, 1000, 5000]) * (3 if donor.startswith("emp") else 1))
    extra = {}
    if rng.random() < 0.1:
        extra = {"currency": "EUR", "fx_rate": "1.0837"}
    if rng.random() < 0.05:
        extra["kind"] = "in_kind"
    if donor in ("ann", "bo") and rng.random() < 0.3:  # shared with the foundation
        extra["attributions"] = [{"donor_id": ids[donor], "fraction": "0.6"},
                                 {"donor_id": ids["fdn"], "fraction": "0.4"}]
    return GiftCreate.model_validate({"donor_id": ids[donor], "amount": amount, "currency": "USD",
                                      "received_on": day, "external_ref": ref, **extra})


def _background(db, policy, ids, rng) -> None:
    """Two years of gifts, and refunds: some soon after their gift, some a year later."""
    recorded = []
    for i in range(80):
        data = _random_gift(rng, ids, f"bg-{i}", FIRST, date(2025, 12, 31))
        recorded.append(record_gift(db, data, ACTOR, policy, "USD").gift)
    accepted = [g for g in recorded if g.status == "accepted"]
    for gift in rng.sample(accepted, 12):
        later = gift.received_on + timedelta(days=rng.choice([3, 40, 200, 400]))
        refund_gift(db, gift.id, ACTOR, refunded_on=later,
                    amount_minor=rng.choice([None, gift.amount_minor // 2]))


def _decisions(db, refs: set[str]) -> dict[str, tuple]:
    found = db.execute(
        select(Gift.external_ref, Gift.status, Gift.lab_minor, Gift.disclose,
               Gift.reporting_amount_minor, Decision.outcome, Decision.reasons, Decision.figures,
               Decision.policy_version)
        .join(Decision, Decision.gift_id == Gift.id).where(Gift.external_ref.in_(refs))
    ).all()
    return {row[0]: tuple(row[1:]) for row in found}


def _mix_days(db) -> dict:
    return {(row.day, row.category): row.credited_ppm
            for row in db.execute(select(FundingMixDay)).scalars() if row.credited_ppm}


def _funding_days(db) -> dict:
    return {row[0]: tuple(row[1:]) for row in db.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor,
               FundingDay.gift_count, FundingDay.refunded_minor, FundingDay.refunded_lab_minor)
        .where(FundingDay.gift_count != 0))}


def test_the_intake_decides_what_the_door_decides_one_by_one(db, policy):
    rng = random.Random(2026)
    ids = _world(db, policy)
    _background(db, policy, ids, rng)
    # Mostly in date order (as an import sends them), with back-dated ones among them.
    batch = [_random_gift(rng, ids, f"new-{i}", date(2024, 6, 1), date(2026, 6, 30))
             for i in range(160)]
    batch.sort(key=lambda g: g.received_on)
    for i in range(0, len(batch), 23):
        batch.insert(i, batch.pop(rng.randrange(len(batch))))
    refs = {g.external_ref for g in batch}

    try:
        with ledger_batch(db):
            for data in batch:
                record_gift(db, data, ACTOR, policy, "USD")
            one_by_one, days_one_by_one = _decisions(db, refs), _funding_days(db)
            mix_one_by_one = _mix_days(db)
            raise _RollBack
    except _RollBack:
        pass
    assert db.execute(select(func.count()).select_from(Gift)
                      .where(Gift.external_ref.in_(refs))).scalar_one() == 0

    with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD", chunk=7) as intake:
        screened = [intake.record(data, tag=i) for i, data in enumerate(batch)]
    assert all(s.gift.id is not None for s in screened)
    in_batch = _decisions(db, refs)

    assert in_batch == one_by_one
    assert _funding_days(db) == days_one_by_one
    assert _mix_days(db) == mix_one_by_one
    recomputed = {(r["day"], r["category"]): r["credited_ppm"]
                  for r in funding.recomputed_mix_days(db) if r["credited_ppm"]}
    assert mix_one_by_one == recomputed and {c for _d, c in recomputed} == {"foundation"}
    outcomes = {row[4] for row in in_batch.values()}
    assert outcomes == {"accept", "hold", "reject"}, "the sample must exercise every outcome"
    assert max(row[6].get("windows_checked", 1) for row in in_batch.values()) > 20, \
        "some gifts must be back-dated before many recorded days"
    assert any("breaking_window_end" in row[6] for row in in_batch.values())
    assert verify_chain(db).ok
    # Each gift's entry seals its gift, decision and attributions as the batch wrote them.
    rows = verify_rows(db)
    assert rows.ok and rows.rows >= 3 * len(screened), [str(f) for f in rows.findings]
    # One decision and one audit entry per gift, naming that decision; its attributions.
    gift_ids = [s.gift.id for s in screened]
    entries = db.execute(select(AuditEntry).where(AuditEntry.action == "gift.recorded",
                                                  AuditEntry.entity_id.in_(gift_ids))).scalars()
    by_gift = {e.entity_id: e.data["decision_id"] for e in entries}
    decisions = dict(db.execute(select(Decision.gift_id, Decision.id)
                                .where(Decision.gift_id.in_(gift_ids))).all())
    assert by_gift == decisions and len(decisions) == len(batch)
    shares = sum(len(data.attributions) if data.attributions else 1 for data in batch)
    assert any(data.attributions for data in batch)
    assert db.execute(select(func.count()).select_from(Attribution)
                      .where(Attribution.gift_id.in_(gift_ids))).scalar_one() == shares


def test_funding_memory_answers_what_the_database_answers(db, policy):
    rng = random.Random(7)
    ids = _world(db, policy)
    _background(db, policy, ids, rng)
    first = date(2024, 9, 1)
    memory = windows.FundingMemory(db, first, policy.window_days)
    checked = 0
    for offset in range(0, 700, 5):
        day = first + timedelta(days=offset)
        assert memory.facts(day) == windows.funding_facts(db, day, policy.window_days), day
        checked += 1
    assert checked == 140
    with pytest.raises(ValueError):
        memory.facts(first - timedelta(days=1))


def test_a_repeated_reference_in_the_batch_is_refused_at_once(db, policy):
    donor = create_donor(db, DonorCreate(type="person", name="Ann"), ACTOR).id
    data = GiftCreate(donor_id=donor, amount="10", currency="USD", received_on=date(2025, 1, 2),
                      external_ref="same")
    with pytest.raises(ValidationFailed, match="repeats an earlier gift of this batch"):
        with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
            intake.record(data, tag="line 2")
            intake.record(data, tag="line 3")
    assert db.execute(select(func.count()).select_from(Gift)).scalar_one() == 0


def test_a_reference_recorded_already_is_refused_with_its_tag_and_nothing_is_kept(db, policy):
    donor = create_donor(db, DonorCreate(type="person", name="Ann"), ACTOR).id
    record_gift(db, GiftCreate(donor_id=donor, amount="10", currency="USD",
                               received_on=date(2025, 1, 2), external_ref="r-2"),
                ACTOR, policy, "USD")
    before = db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    with pytest.raises(GiftRefused) as refused:
        with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
            for i in (1, 2, 3):
                intake.record(GiftCreate(donor_id=donor, amount="10", currency="USD",
                                         received_on=date(2025, 1, 3), external_ref=f"r-{i}"),
                              tag=f"row {i}")
    assert refused.value.tag == "row 2"
    assert refused.value.error.field == "external_ref"
    assert db.execute(select(func.count()).select_from(Gift)).scalar_one() == 1
    assert db.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == before


def test_the_intake_is_the_only_writer_while_open_and_only_inside_a_batch(db, policy):
    donor = create_donor(db, DonorCreate(type="person", name="Ann"), ACTOR).id
    with pytest.raises(RuntimeError, match="only inside ledger_batch"):
        with GiftIntake(db, ACTOR, policy, "USD"):
            pass
    with pytest.raises(RuntimeError, match="close it before any other ledger write"):
        with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
            intake.record(GiftCreate(donor_id=donor, amount="10", currency="USD",
                                     received_on=date(2025, 1, 3)))
            with ledger_write(db):
                pass
    assert db.execute(select(func.count()).select_from(Gift)).scalar_one() == 0


def _write_import(directory, gifts: int) -> None:
    (directory / "donors.csv").write_text("external_id,type,name\nD1,person,Ann\n")
    (directory / "affiliations.csv").write_text(
        "donor_external_id,organization,senior_decision_maker,start_date\n")
    lines = [f"G{i},D1,10.00,USD,2025-02-{i % 28 + 1:02d}" for i in range(1, gifts + 1)]
    (directory / "gifts.csv").write_text(
        "external_ref,donor_external_id,amount,currency,received_on\n" + "\n".join(lines) + "\n")


def test_a_gift_recorded_between_the_check_and_the_import_aborts_it_at_its_line(
        app, db, policy, tmp_path):
    """Pass 1 runs without the lock: a gift recorded meanwhile with a row's external_ref is
    found when the intake writes that row's chunk, and the whole import is refused."""
    _write_import(tmp_path, 30)
    other = create_donor(db, DonorCreate(type="person", name="Someone else"), ACTOR).id
    before = db.execute(select(func.count()).select_from(Gift)).scalar_one()
    with CsvImport(db, today=date(2025, 6, 30), reporting_currency="USD") as job:
        for kind in KINDS:
            with (tmp_path / f"{kind}.csv").open("rb") as stream:
                job.check(kind, stream)
        assert job.errors == []
        with app.extensions["armslength"].sessions() as meanwhile:
            record_gift(meanwhile, GiftCreate(donor_id=other, amount="5", currency="USD",
                                              received_on=date(2025, 1, 1), external_ref="G17"),
                        ACTOR, policy, "USD")
        with pytest.raises(ImportAborted) as aborted:
            job.run(ACTOR, policy, files={kind: f"{kind}.csv" for kind in KINDS})
    assert (aborted.value.file, aborted.value.line) == ("gifts", 18)
    assert "external_ref already recorded" in aborted.value.message
    assert db.execute(select(func.count()).select_from(Gift)).scalar_one() == before + 1


def test_day_sums_match_plain_sums_over_any_dates():
    rng = random.Random(3)
    first = date(2020, 1, 1)
    sums = windows._DaySums()
    sums.add(date(9000, 1, 1), 7, 1)  # a far-future date costs its own nodes only
    sums.add(date(1, 1, 1), 5, 0)
    plain: dict[date, tuple[int, int]] = {}
    for _ in range(1500):
        day = first + timedelta(days=rng.randrange(0, 6000))  # several doublings past 1,024
        total, lab = rng.randrange(-50, 1000), rng.randrange(0, 100)
        sums.add(day, total, lab)
        old = plain.get(day, (0, 0))
        plain[day] = (old[0] + total, old[1] + lab)
        low = first + timedelta(days=rng.randrange(-30, 6100))
        high = low + timedelta(days=rng.randrange(0, 800))
        inside = [v for d, v in plain.items() if low <= d <= high]
        assert sums.between(low, high) == (sum(v[0] for v in inside), sum(v[1] for v in inside))
    assert sums.between(date(1, 1, 1), date(9999, 12, 31)) == (
        sum(v[0] for v in plain.values()) + 12, sum(v[1] for v in plain.values()) + 1)
    assert len(sums._total) < 23 * (len(plain) + 2)


def test_an_error_out_of_the_intake_fails_the_batch_even_if_caught(db, policy):
    """Chunks already written must not commit without the rest, whatever the caller does."""
    donor = create_donor(db, DonorCreate(type="person", name="Ann"), ACTOR).id
    with pytest.raises(BatchAborted):
        with ledger_batch(db):
            try:
                with GiftIntake(db, ACTOR, policy, "USD", chunk=2) as intake:
                    for i in range(3):  # the first two are written
                        intake.record(GiftCreate(donor_id=donor, amount="10", currency="USD",
                                                 received_on=date(2025, 1, 3),
                                                 external_ref=f"c-{i}"))
                    raise KeyError("the caller's own bug")
            except KeyError:
                pass
    assert db.execute(select(func.count()).select_from(Gift)).scalar_one() == 0


def test_an_earlier_recorded_reference_is_reported_before_a_later_bad_gift(db, policy):
    """As record_gift one by one would: it stops at the first gift already recorded."""
    donor = create_donor(db, DonorCreate(type="person", name="Ann"), ACTOR).id
    record_gift(db, GiftCreate(donor_id=donor, amount="10", currency="USD",
                               received_on=date(2025, 1, 2), external_ref="seen"),
                ACTOR, policy, "USD")
    with pytest.raises(GiftRefused) as refused:
        with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
            intake.record(GiftCreate(donor_id=donor, amount="10", currency="USD",
                                     received_on=date(2025, 1, 3), external_ref="new"), tag=2)
            intake.record(GiftCreate(donor_id=donor, amount="10", currency="USD",
                                     received_on=date(2025, 1, 3), external_ref="seen"), tag=3)
            intake.record(GiftCreate(donor_id=donor + 999, amount="10", currency="USD",
                                     received_on=date(2025, 1, 3), external_ref="x"), tag=4)
    assert refused.value.tag == 3
