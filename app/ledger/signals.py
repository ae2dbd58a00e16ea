"""What the ledger announces after a transaction commits, for integrations to act on.

The ledger stays free of payment processors: Stripe listens here (app.payments) and,
for instance, returns the money of a gift a reviewer rejected.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A reviewer rejected a held gift; sent after the commit. Sender: the session;
#: keyword arguments: gift_id, actor.
gift_rejected_by_review = _signals.signal("gift-rejected-by-review")
