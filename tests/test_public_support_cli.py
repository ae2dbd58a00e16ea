"""`armslength public-support`: the worked example of docs/public-support.md from the CLI."""

from __future__ import annotations

import json

import pytest

from tests.public_support_example import Example


@pytest.fixture
def example(api):
    return Example(api)


def test_the_command_prints_the_computation(app, example):
    result = app.test_cli_runner().invoke(args=["public-support", "--year", "2025"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Total support: 5000000.00 USD" in out
    assert "Excess (line 5): 950000.00 USD" in out
    assert "Percentage (line 14): 81.00%: meets the 33 1/3% support test" in out
    assert "Alice Aster + Bob Aster: 150000.00 USD, excess 50000.00 USD" in out

    result = app.test_cli_runner().invoke(args=["public-support", "--year", "2025", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["public_support"]["minor"] == 405_000_000
