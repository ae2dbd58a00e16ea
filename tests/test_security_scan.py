"""Security checks that run with the suite.

- bandit finds nothing in app/, models/ and policies/. Each remaining false positive is
  marked in the code with `# nosec <test id>` and the reason beside it (a token prefix, a
  setting whose default is "not set", the documented demo credential, the demo's seeded
  random numbers, pygal's own SVG tree and output).
- A Stripe webhook replayed outside the signature tolerance is refused and writes nothing:
  tests/stripe/test_stripe_webhooks.py::test_a_stale_signature_is_refused_as_a_replay (an
  event signed an hour ago; the tolerance is app.payments.webhooks.SIGNATURE_TOLERANCE,
  300 s), with a wrong secret, a missing signature and a tampered body beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bandit_finds_nothing_in_the_application_code():
    out = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", "app", "models", "policies", "-f", "json", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    report = json.loads(out.stdout)
    findings = [f"{r['filename']}:{r['line_number']}: {r['test_id']} {r['issue_text']}"
                for r in report["results"]]
    assert findings == [], "\n".join(findings)
    assert not report["errors"], report["errors"]


def test_the_webhook_replay_test_exists():
    """The replay check lives with the other webhook tests; keep this pointer honest."""
    from app.payments.webhooks import SIGNATURE_TOLERANCE
    from tests.stripe import test_stripe_webhooks

    assert SIGNATURE_TOLERANCE == 300
    assert callable(test_stripe_webhooks.test_a_stale_signature_is_refused_as_a_replay)
