"""One run at a time without reserved concurrency: a lease in the state table.

The reconcile and the replay must never overlap (two reconciles race on X's subscriptions, two
replays could both start a job). Reserving one concurrent execution each guaranteed that, but a
new AWS account's concurrency quota is 10 and Lambda refuses any reservation that leaves fewer
than 10 unreserved: the first ``sam deploy`` failed. A lease costs nothing to deploy.

Item: ``pk=lease``, ``sk=<name>``, ``holder`` (the Lambda request id), ``lease_until`` (epoch
seconds). Taking it is one conditional PutItem that succeeds only when there is no lease or the
last one has run out; the holder gives it back with a conditional UpdateItem (never a blind
write: a run that outlived its lease must not free its successor's). A run that crashes or is
killed at its timeout frees it by expiry: the lease is as long as the run may last, plus a margin
for clock drift between Lambda hosts. ``expires_at`` lets DynamoDB's TTL drop leases of functions
that no longer run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from xrelay.aws import client, error_code
from xrelay.storage.store import conditional_write

LEASE = "lease"
# Lambda hosts keep NTP time; a few seconds covers their drift and the call's own latency.
CLOCK_MARGIN_S = 5
# The item stays a day after its last use (TTL), so `xrelay doctor`/support can still see it.
KEEP_S = 86_400

_log = logging.getLogger("xrelay.lease")


def acquire(table: str, name: str, holder: str, seconds: float, *, ddb: Any = None,
            now: datetime | None = None) -> bool:
    """Take the lease ``name`` for ``seconds`` (plus the margin): False while another holder has it."""
    ddb = ddb or client("dynamodb")
    at = int((now or datetime.now(UTC)).timestamp())
    until = at + int(seconds) + CLOCK_MARGIN_S
    item = {"pk": {"S": LEASE}, "sk": {"S": name}, "holder": {"S": holder},
            "lease_until": {"N": str(until)}, "expires_at": {"N": str(until + KEEP_S)}}
    return conditional_write(lambda: ddb.put_item(
        TableName=table, Item=item,
        ConditionExpression="attribute_not_exists(sk) OR lease_until < :now",
        ExpressionAttributeValues={":now": {"N": str(at)}}), table)


def release(table: str, name: str, holder: str, *, ddb: Any = None) -> bool:
    """Give the lease back if ``holder`` still has it. Never raises: an unreleased lease expires."""
    ddb = ddb or client("dynamodb")
    try:
        ddb.update_item(TableName=table, Key={"pk": {"S": LEASE}, "sk": {"S": name}},
                        UpdateExpression="SET lease_until = :zero",
                        ConditionExpression="holder = :me",
                        ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": holder}})
        return True
    except Exception as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            _log.warning("lease %s not released (%s): it expires on its own", name,
                         error_code(exc) or type(exc).__name__)
        return False


@contextmanager
def exclusive(table: str, name: str, holder: str, seconds: float, *, ddb: Any = None,
              now: datetime | None = None) -> Iterator[bool]:
    """``with exclusive(...) as held:`` runs the block with ``held`` True only for the one holder.

    A failure to reach DynamoDB raises (StoreUnavailable): without the lease nothing may run.
    """
    ddb = ddb or client("dynamodb")
    held = acquire(table, name, holder, seconds, ddb=ddb, now=now)
    try:
        yield held
    finally:
        if held:
            release(table, name, holder, ddb=ddb)


def holder_of(table: str, name: str, *, ddb: Any = None, now: datetime | None = None) -> str | None:
    """Who holds the lease now (None when it is free)."""
    ddb = ddb or client("dynamodb")
    item = ddb.get_item(TableName=table, Key={"pk": {"S": LEASE}, "sk": {"S": name}}, ConsistentRead=True).get("Item")
    at = int((now or datetime.now(UTC)).timestamp())
    if not item or int(item["lease_until"]["N"]) < at:
        return None
    return item["holder"]["S"]
