"""Which of X's two signing schemes deliveries arrive in, recorded for ``xrelay status``.

The ``DeliveriesSigned`` metric (dimension ``Scheme``) counts every delivery; this log keeps, in
the state table, when each signing secret last verified one (``pk=signing``, ``sk`` the app
secret's field: ``client_secret``, ``previous_client_secret``, ``consumer_secret``,
``previous_consumer_secret``). That tells the operator which scheme X actually uses, and when a
rotation's previous secret stopped being used.

Cost: at most one PutItem per secret per ``NOTE_EVERY`` per warm intake sandbox, never one per
delivery (the sandbox remembers what it wrote). A failed write is logged and the delivery goes
on: this record is an aid, the delivery is what matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from xrelay.receiving.signature import Verified

SIGNING = "signing"
NOTE_EVERY = timedelta(minutes=10)
# `xrelay doctor`'s signed test delivery: no event, for user 0 (no X user). Intake verifies and
# counts it like any other, but does not record it here: it says which secrets the doctor signed
# with, not which scheme X uses.
DOCTOR_PROBE = {"for_user_id": "0", "tweet_create_events": []}


@dataclass
class SigningLog:
    table: str
    ddb: Any
    every: timedelta = NOTE_EVERY
    _written: dict[tuple[str, str | None], datetime] = field(default_factory=dict, repr=False)

    def note(self, verified: Verified, at: datetime) -> bool:
        """Record that ``verified``'s secret verified a delivery at ``at``; False when recorded recently."""
        key = (verified.secret, verified.unchecked)
        last = self._written.get(key)
        if last is not None and at - last < self.every:
            return False
        item: dict[str, Any] = {"pk": {"S": SIGNING}, "sk": {"S": verified.secret},
                                "scheme": {"S": verified.scheme}, "last_at": {"S": at.isoformat()}}
        if verified.unchecked:  # e.g. X also sent the OAuth 2.0 header, but no client_secret is configured
            item["unchecked_header"] = {"S": verified.unchecked}
        self.ddb.put_item(TableName=self.table, Item=item)
        self._written[key] = at
        return True


def last_signed(table: str, ddb: Any) -> list[dict[str, str]]:
    """[{secret, scheme, last_at, unchecked_header?}] as the intake last recorded them (one Query)."""
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": SIGNING}}).get("Items", [])
    return [{"secret": i["sk"]["S"], **{k: v["S"] for k, v in i.items() if k not in ("pk", "sk") and "S" in v}}
            for i in items]
