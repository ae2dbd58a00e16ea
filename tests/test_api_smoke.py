from datetime import date

from tests.builders import World, gift, summary


def test_lab_employee_gift_is_accepted_then_cap_rejects(api):
    w = World(api)
    day = date(2026, 3, 1)
    base = gift(api, w.donor["id"], "1000.00", day)
    assert base["status"] == "accepted"
    ok = gift(api, w.employee["id"], "999.99", day)
    assert ok["status"] == "accepted", ok["decision"]
    too_much = gift(api, w.employee["id"], "0.01", day)
    assert too_much["status"] == "rejected"
    fired = [r["rule"] for r in too_much["decision"]["reasons"] if r["fired"]]
    assert fired == ["lab_employee_cap"]
    s = summary(api, day)
    assert s["lab_employee_share"] == "0.499997"  # 99999 / 199999, truncated
    assert s["headroom"] == "0.00"
    assert s["in_breach"] is False
