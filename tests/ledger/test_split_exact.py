"""A gift's money split between donors (app.ledger.public_support._split): exact in minor
units, in proportion to the fractions given (a whole gift's, or the part left after the lab
employees' shares), the units left over to the largest remainders, ties to the smaller id."""

import pytest

from app.ledger.public_support import _split


@pytest.mark.parametrize(("amount", "shares", "parts"), [
    (10_001, [(1, 500_000), (2, 500_000)], [(1, 5_001), (2, 5_000)]),  # tie: smaller id
    (10_001, [(2, 500_000), (1, 500_000)], [(2, 5_000), (1, 5_001)]),  # order kept
    (100, [(1, 333_334), (2, 333_333), (3, 333_333)], [(1, 34), (2, 33), (3, 33)]),
    (2, [(1, 333_334), (2, 333_333), (3, 333_333)], [(1, 1), (2, 1), (3, 0)]),
    # Part of a gift's fractions (the others' after a lab employee's fifth): 8,001 over
    # 0.4 : 0.4 is 4,000.5 each.
    (8_001, [(7, 400_000), (5, 400_000)], [(7, 4_000), (5, 4_001)]),
    # 7,502 over 0.75 alone: all of it.
    (7_502, [(3, 750_000)], [(3, 7_502)]),
    # 1,000 over 0.1 : 0.3 = 250 and 750, no remainder.
    (1_000, [(1, 100_000), (2, 300_000)], [(1, 250), (2, 750)]),
    # 999 over 0.1 : 0.3 = 249.75 and 749.25: the unit to the larger remainder.
    (999, [(1, 100_000), (2, 300_000)], [(1, 250), (2, 749)]),
    (0, [(1, 400_000), (2, 600_000)], [(1, 0), (2, 0)]),
])
def test_split_is_exact_and_proportional(amount, shares, parts):
    got = _split(amount, shares)
    assert got == parts
    assert sum(part for _, part in got) == amount
