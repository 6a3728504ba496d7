"""The store's error mapping, its values with units and its keyed collections with neighbours (issue 19).

What no other test looked at: which DynamoDB failures are a refusal (set aside) and which are "not now"
(503, X retries); an ``expires_at`` read back from the item, the tombstone's extra lifetime; the
quarantine's split at its size limit; and each keyed collection of the state table with a neighbour
beside the item under test. The event item's layout is left to its own tests (it is being reshaped):
only its expiry, which decides when an event is gone, is read here.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from conftest import ROOT, fixture_bytes, fixture_json
from helpers import client_error, post, state_items, stored_keys
from xrelay.aws import client
from xrelay.events.models import ControlMessage
from xrelay.events.normalize import delivery_id, normalize
from xrelay.storage import store
from xrelay.storage.store import (
    COMPLIANCE_MARGIN_DAYS,
    TOMBSTONE,
    EventStore,
    StateStore,
    StoreRefused,
    StoreUnavailable,
    conditional_write,
    decode_record,
)

RETENTION_DAYS = 7  # not the template's default (30), so a default used instead of the Parameter shows
DELETED_POST = "2080761269309813134"  # tests/fixtures/xaa/02_post.delete.json's payload.id
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def raising(exc: BaseException):
    def write():
        raise exc
    return write


def aws_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutItem")


def epoch(item: dict, name: str = "expires_at") -> int:
    return int(item[name]["N"])


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def short_stack():
    """The local stack with RetentionDays=7, so a value read back must come from the Parameter."""
    from moto import mock_aws

    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()
        local = LocalStack(ROOT, "xrelay")
        local.provision({"RetentionDays": str(RETENTION_DAYS)})
        yield local
    client.cache_clear()


@pytest.fixture
def state(stack) -> StateStore:
    return StateStore(stack.stack.physical("StateTable"))


def events_item(stack, pk: str) -> dict:
    return client("dynamodb").get_item(TableName=stack.stack.physical("EventsTable"), Key={"pk": {"S": pk}},
                                       ConsistentRead=True)["Item"]


# --- conditional_write: a failed condition, a refusal, or "not now" ------------------------------------


def test_a_write_that_succeeds_is_true_and_a_failed_condition_is_false_not_an_error():
    assert conditional_write(lambda: {"ok": True}, "T") is True
    assert conditional_write(raising(aws_error("ConditionalCheckFailedException")), "T") is False


@pytest.mark.parametrize("code", ["ValidationException", "SerializationException"])
def test_a_request_dynamodb_refuses_is_store_refused_naming_the_table_and_the_code(code):
    with pytest.raises(StoreRefused) as raised:
        conditional_write(raising(aws_error(code)), "events-table")
    assert str(raised.value) == f"write to events-table failed: {code}"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded", "InternalServerError", "AccessDeniedException",
                                  "TransactionConflictException"])
def test_throttling_outage_and_permissions_are_unavailable_never_a_refusal(code):
    with pytest.raises(StoreUnavailable) as raised:
        conditional_write(raising(aws_error(code, 500 if code == "InternalServerError" else 400)), "T")
    assert not isinstance(raised.value, StoreRefused)  # a refusal is set aside for good; this must be retried
    assert str(raised.value) == f"write to T failed: {code}"


def test_no_answer_at_all_is_unavailable_and_names_what_failed():
    with pytest.raises(StoreUnavailable) as raised:
        conditional_write(raising(EndpointConnectionError(endpoint_url="https://dynamodb")), "T")
    assert not isinstance(raised.value, StoreRefused)
    assert str(raised.value) == "write to T failed: EndpointConnectionError"
    assert isinstance(raised.value.__cause__, EndpointConnectionError)  # the original kept for the traceback


# --- through the intake: a refused tombstone is set aside, a throttled one answered 503 ---------------


def tombstone_writes(stack):
    table = stack.stack.physical("EventsTable")
    return lambda params: params["TableName"] == table and params["Item"]["pk"]["S"].startswith(TOMBSTONE)


def test_a_tombstone_dynamodb_refuses_sets_the_deletion_aside_and_the_answer_is_200(stack, faults):
    rule = faults.inject("dynamodb", "PutItem", client_error("ValidationException", 400), when=tombstone_writes(stack))
    body = fixture_bytes("xaa/02_post.delete.json")

    code, answer = post(stack, body)
    assert (code, answer["quarantined"]) == (200, True) and rule.fired == 1
    assert "ValidationException" in answer["errors"][0]
    assert stored_keys(stack) == []  # the event is not stored without its tombstone (compliance.py)
    (kept,) = StateStore(stack.stack.physical("StateTable")).quarantined()
    assert kept["delivery_id"] == delivery_id(body) and kept["body"] == body


def test_a_throttled_tombstone_answers_503_and_x_s_retry_writes_it_then_the_event(stack, faults):
    rule = faults.inject("dynamodb", "PutItem", client_error("ProvisionedThroughputExceededException", 400),
                         when=tombstone_writes(stack))
    body = fixture_bytes("xaa/02_post.delete.json")

    assert post(stack, body) == (503, {"error": "temporarily unavailable, retry"})
    assert rule.fired == 1 and stored_keys(stack) == [] and state_items(stack, "quarantine") == []

    assert post(stack, body)[0] == 200
    assert len(stored_keys(stack)) == 1
    assert events_item(stack, TOMBSTONE + DELETED_POST)["deleted_post"]["S"] == DELETED_POST


def test_a_quarantine_write_that_is_throttled_answers_503_so_nothing_signed_is_lost(stack, faults):
    rule = faults.inject("dynamodb", "PutItem", client_error("ThrottlingException", 400),
                         when=lambda params: params["Item"]["pk"]["S"] == store.QUARANTINE)
    body = fixture_bytes("other/unrecognised_shape.json")

    assert post(stack, body) == (503, {"error": "temporarily unavailable, retry"})
    assert rule.fired == 1 and state_items(stack, "quarantine") == []
    assert post(stack, body)[0] == 200  # X's retry
    assert len(state_items(stack, "quarantine")) == 1


# --- values with units: expires_at from RetentionDays, the tombstone's margin --------------------------


def test_an_event_expires_retention_days_after_it_was_received_read_back_from_its_item(short_stack):
    before = datetime.now(UTC)
    assert post(short_stack, fixture_bytes("xaa/01_post.create.json"))[0] == 200
    (key,) = stored_keys(short_stack)
    item = events_item(short_stack, key)
    record = decode_record(item["record"]["B"])
    received = record.received_at
    assert before <= received <= datetime.now(UTC)

    assert epoch(item) == int((received + timedelta(days=RETENTION_DAYS)).timestamp())
    # Counted from the receipt, not from when X says the post was made (months earlier in the fixture).
    assert epoch(item) - int(record.occurred_at.timestamp()) > RETENTION_DAYS * 86400


def test_a_tombstone_outlives_the_events_it_guards_by_the_compliance_margin(short_stack):
    assert post(short_stack, fixture_bytes("xaa/02_post.delete.json"))[0] == 200
    (key,) = stored_keys(short_stack)
    event, tombstone = events_item(short_stack, key), events_item(short_stack, TOMBSTONE + DELETED_POST)

    noted = parsed(tombstone["noted_at"]["S"])
    assert epoch(tombstone) == int((noted + timedelta(days=RETENTION_DAYS + COMPLIANCE_MARGIN_DAYS)).timestamp())
    assert COMPLIANCE_MARGIN_DAYS == 2  # a replay reaches 24 hours back: a late copy must still find it
    assert epoch(tombstone) - epoch(event) == COMPLIANCE_MARGIN_DAYS * 86400
    assert tombstone["deleted_by"]["S"] == key and tombstone["deleted_for"]["S"] == "1111111111111111111"
    assert tombstone["delivery_id"]["S"] == decode_record(event["record"]["B"]).delivery_id


def deletion(name: str = "xaa/02_post.delete.json", received_at: datetime = T0, **changes):
    body = json.dumps(fixture_json(name) | changes).encode()
    (record,) = normalize(json.loads(body), delivery=delivery_id(body), received_at=received_at).events
    return record


def test_a_tombstone_is_written_once_and_a_later_copy_does_not_move_its_expiry(stack):
    events = EventStore(stack.stack.physical("EventsTable"), retention_days=30)
    first = deletion()
    assert events.record_deletion(first, T0) is True
    written = events_item(stack, TOMBSTONE + DELETED_POST)
    assert epoch(written) == int((T0 + timedelta(days=32)).timestamp())
    assert written["noted_at"]["S"] == "2026-11-20T12:00:00.000Z"
    assert written["deleted_at"]["S"] == "2026-11-20T12:00:00.000Z"  # X gave no time: its receipt

    assert events.record_deletion(deletion(received_at=T0 + timedelta(days=1)), T0 + timedelta(days=1)) is False
    assert events_item(stack, TOMBSTONE + DELETED_POST) == written


def test_an_aaa_deletion_says_when_x_deleted_the_post_and_for_whom(stack):
    events = EventStore(stack.stack.physical("EventsTable"), retention_days=30)
    record = deletion("aaa/tweet_delete.json")
    assert events.record_deletion(record, T0) is True
    item = events_item(stack, TOMBSTONE + "1045405559317569537")
    assert item["deleted_at"]["S"] == "2015-05-21T17:09:15.593Z"  # timestamp_ms, not the receipt
    assert item["deleted_for"]["S"] == "930524282358325248"


def test_a_deletion_that_names_no_post_writes_nothing(stack):
    events = EventStore(stack.stack.physical("EventsTable"), retention_days=30)
    doc = fixture_json("xaa/02_post.delete.json")
    doc["data"]["payload"] = {"author_id": "1111111111111111111"}  # no id
    body = json.dumps(doc).encode()
    (record,) = normalize(doc, delivery=delivery_id(body), received_at=T0).events
    assert events.record_deletion(record, T0) is False
    assert client("dynamodb").scan(TableName=events.table)["Items"] == []


# --- the quarantine: compressed, split at its part size, each delivery read back whole ----------------


def incompressible(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def test_a_small_delivery_is_kept_compressed_in_one_item(state):
    body = b'{"data": ' + b'"abc" ' * 2000 + b"}"
    assert state.quarantine("d1", body, "why", T0) is True
    (item,) = state_items_of(state, store.QUARANTINE)
    assert "parts" not in item and zlib.decompress(item["body"]["B"]) == body
    assert len(item["body"]["B"]) < len(body) // 10  # compressed, not merely stored
    assert state_items_of(state, store.QUARANTINE_PART) == []


def state_items_of(state: StateStore, pk: str) -> list[dict]:
    return client("dynamodb").query(TableName=state.table, KeyConditionExpression="pk = :p",
                                    ExpressionAttributeValues={":p": {"S": pk}})["Items"]


@pytest.mark.parametrize("spare, parts", [(0, 0), (1, 2)])
def test_a_delivery_is_split_only_when_its_compressed_body_exceeds_the_part_size(state, monkeypatch, spare, parts):
    body = incompressible(3000, seed=1)
    compressed = len(zlib.compress(body, 6))
    monkeypatch.setattr(store, "QUARANTINE_PART_BYTES", compressed - spare)  # at the limit, and one byte over

    assert state.quarantine("d1", body, "why", T0) is True
    (head,) = state_items_of(state, store.QUARANTINE)
    stored_parts = state_items_of(state, store.QUARANTINE_PART)
    assert len(stored_parts) == parts and ("parts" in head) == bool(parts)
    if parts:
        assert head["parts"]["N"] == "2" and "body" not in head
        assert [len(p["body"]["B"]) for p in stored_parts] == [compressed - 1, 1]
    assert [q["body"] for q in state.quarantined()] == [body]


def test_neighbouring_large_deliveries_are_each_read_back_from_their_own_parts(state, monkeypatch):
    monkeypatch.setattr(store, "QUARANTINE_PART_BYTES", 1000)
    bodies = {"abc": incompressible(2500, seed=2), "abcd": incompressible(4200, seed=3),
              "ab": incompressible(900, seed=4)}
    for name, body in bodies.items():
        assert state.quarantine(name, body, f"reason {name}", T0) is True

    kept = {q["delivery_id"]: q for q in state.quarantined()}
    assert {name: q["body"] for name, q in kept.items()} == bodies
    assert {name: q["reason"] for name, q in kept.items()} == {name: f"reason {name}" for name in bodies}
    parts = sorted(p["sk"]["S"] for p in state_items_of(state, store.QUARANTINE_PART))
    assert parts == ["abc#00000", "abc#00001", "abc#00002", *(f"abcd#{i:05d}" for i in range(5))]
    assert all(len(p["body"]["B"]) <= 1000 for p in state_items_of(state, store.QUARANTINE_PART))


def test_a_delivery_missing_a_part_is_unavailable_never_a_truncated_body(state, monkeypatch):
    monkeypatch.setattr(store, "QUARANTINE_PART_BYTES", 1000)
    state.quarantine("d1", incompressible(2500, seed=5), "why", T0)
    client("dynamodb").delete_item(TableName=state.table,
                                   Key={"pk": {"S": store.QUARANTINE_PART}, "sk": {"S": "d1#00001"}})
    with pytest.raises(StoreUnavailable, match="has 2 of 3 parts"):
        list(state.quarantined())


def test_a_redelivery_keeps_the_first_copy_and_its_reason(state):
    assert state.quarantine("d1", b"first", "first reason", T0) is True
    assert state.quarantine("d1", b"first", "second reason", T0 + timedelta(hours=1)) is False
    (kept,) = state.quarantined()
    assert (kept["reason"], kept["received_at"], kept["attempts"]) == ("first reason", "2026-11-20T12:00:00.000Z", 0)


def test_a_long_reason_is_cut_to_what_an_item_should_hold(state):
    state.quarantine("d1", b"x", "r" * 5000, T0)
    (kept,) = state.quarantined()
    assert kept["reason"] == "r" * 2000 + "...[3000 more]"  # says how much was cut


def test_attempts_count_each_reprocessing_and_only_pending_deliveries_are_listed(state):
    for name in ("d1", "d2", "d3"):
        state.quarantine(name, name.encode(), "why", T0)
    state.mark_quarantine("d1", "pending", "still failing")
    state.mark_quarantine("d1", "pending")
    state.mark_quarantine("d2", "reprocessed")

    pending = {q["delivery_id"]: q for q in state.quarantined()}
    assert sorted(pending) == ["d1", "d3"]
    assert (pending["d1"]["attempts"], pending["d1"]["reason"]) == (2, "still failing")  # a reason only when given
    assert (pending["d3"]["attempts"], pending["d3"]["reason"]) == (0, "why")
    every = {q["delivery_id"]: q for q in state.quarantined(include_done=True)}
    assert (every["d2"]["status"], every["d2"]["attempts"], every["d2"]["body"]) == ("reprocessed", 1, b"d2")


def test_only_a_pending_delivery_can_be_discarded_and_its_neighbour_stays_pending(state):
    state.quarantine("d1", b"one", "why", T0)
    state.quarantine("d10", b"ten", "why", T0)
    assert state.discard_quarantined("d1", "ops@example.com", "junk", T0 + timedelta(days=1)) is True
    assert state.discard_quarantined("d1", "ops@example.com", "again", T0 + timedelta(days=2)) is False
    assert state.discard_quarantined("d2", "ops@example.com", "unknown", T0) is False

    assert [q["delivery_id"] for q in state.quarantined()] == ["d10"]
    discarded = next(q for q in state.quarantined(include_done=True) if q["delivery_id"] == "d1")
    assert {k: discarded[k] for k in ("status", "discarded_by", "discard_reason", "discarded_at", "body")} == {
        "status": "discarded", "discarded_by": "ops@example.com", "discard_reason": "junk",
        "discarded_at": "2026-11-21T12:00:00.000Z", "body": b"one"}


# --- control messages, desired state, the reconcile's last run ----------------------------------------


def control(kind: str, body: dict, delivery: str = "dlv") -> ControlMessage:
    return ControlMessage(kind=kind, body=body, received_at=T0, delivery_id=delivery)


def test_a_job_status_is_recorded_once_per_job_and_state_beside_its_neighbours(state):
    assert state.record_control(control("replay_job_status", {"job_id": "7", "job_state": "Incomplete"})) is True
    assert state.record_control(control("replay_job_status", {"job_id": "7", "job_state": "Complete"})) is True
    assert state.record_control(control("replay_job_status", {"job_id": "7", "job_state": "Complete"},
                                        "another-delivery")) is False
    assert state.record_control(control("replay_job_status", {"job_id": "70", "job_state": "Complete"})) is True
    assert state.record_control(control("replay_job_status", {"job_state": "Complete"})) is True

    recorded = state.controls("replay_job_status")
    assert sorted(c["sk"] for c in recorded) == ["-#Complete", "7#Complete", "7#Incomplete", "70#Complete"]
    assert {c["received_at"] for c in recorded} == {"2026-11-20T12:00:00.000Z"}
    assert next(c for c in recorded if c["sk"] == "7#Complete")["body"] == {"job_id": "7", "job_state": "Complete"}


def test_other_control_kinds_are_recorded_once_per_delivery(state):
    assert state.record_control(control("other_control", {"n": 1}, "d1")) is True
    assert state.record_control(control("other_control", {"n": 1}, "d1")) is False
    assert state.record_control(control("other_control", {"n": 2}, "d2")) is True
    assert sorted((c["sk"], c["body"]["n"]) for c in state.controls("other_control")) == [("d1", 1), ("d2", 2)]
    assert state.controls("replay_job_status") == []


def test_teardown_marks_the_stored_desired_state_and_the_next_apply_clears_it(state):
    assert state.desired() is None and state.torn_down_at() is None
    assert state.mark_torn_down(T0) is False  # nothing to mark: never applied
    assert state.desired() is None  # and the failed mark created no item

    state.put_desired('{"webhook": null}', "s" * 600, T0)
    assert state.desired() == {"state": '{"webhook": null}', "source": "s" * 500, "applied_at": "2026-11-20T12:00:00.000Z"}
    assert state.mark_torn_down(T0 + timedelta(hours=1)) is True
    assert state.torn_down_at() == "2026-11-20T13:00:00.000Z"
    state.put_desired("{}", "x.yaml", T0 + timedelta(hours=2))
    assert state.torn_down_at() is None


def test_the_reconcile_run_keeps_its_fields_and_at_most_twenty_failures(state):
    assert state.last_reconcile_run() is None
    outcome = {"ok": False, "drift": 3, "failed": [f"action {i}" for i in range(25)], "secret": "not kept"}
    state.record_reconcile_run(T0, outcome)
    run = state.last_reconcile_run()
    assert run["at"] == "2026-11-20T12:00:00.000Z" and (run["ok"], run["drift"]) == (False, 3)
    assert run["failed"] == [f"action {i}" for i in range(20)] and "secret" not in run
    assert set(run) == {"at", *store.RECONCILE_RUN_FIELDS}

    state.record_reconcile_run(T0 + timedelta(minutes=5), {"ok": True})
    assert state.last_reconcile_run()["failed"] == [] and state.last_reconcile_run()["ok"] is True


# --- users: a revoke never undoes a later authorisation -----------------------------------------------


def test_a_revoke_applies_unless_the_user_authorised_again_after_it_and_neighbours_are_apart(state):
    state.mark_authorized("111", T0)
    state.mark_authorized("1111", T0)
    assert state.record_revocation("111", T0 - timedelta(minutes=1), "k-old") is False  # a replayed old revoke
    assert state.users()["111"]["status"] == "authorized"
    assert state.record_revocation("111", T0 + timedelta(minutes=1), "k-new") is True
    assert state.record_revocation("222", T0, "k-never-authorised") is True

    users = state.users()
    assert users["111"] | {"updated_at": "-"} == {"status": "revoked", "authorized_at": "2026-11-20T12:00:00.000Z",
                                                  "revoked_at": "2026-11-20T12:01:00.000Z", "revoke_event": "k-new",
                                                  "updated_at": "-"}
    assert users["1111"] == {"status": "authorized", "authorized_at": "2026-11-20T12:00:00.000Z",
                             "updated_at": "2026-11-20T12:00:00.000Z"}
    assert users["222"]["status"] == "revoked"


# --- webhook health: two webhooks, each with its own outages ------------------------------------------


URL_A, URL_B = "https://a.example.com/webhook", "https://b.example.com/webhook"


def test_each_webhooks_outage_starts_at_its_own_last_valid_check_and_closes_alone(state):
    state.record_webhook_check(URL_A, "1", "valid", T0)
    state.record_webhook_check(URL_B, "2", "valid", T0 + timedelta(minutes=5))
    assert state.record_webhook_check(URL_A, "1", "invalid", T0 + timedelta(minutes=10), "CRC failed") is None
    assert state.record_webhook_check(URL_B, "2", "valid", T0 + timedelta(minutes=10)) is None

    (outage,) = state.webhook_outages()
    assert outage == {"from": "2026-11-20T12:00:00.000Z", "webhook_url": URL_A, "reason": "CRC failed",
                      "webhook_id": "1"}
    assert state.webhook_health(URL_B)["status"] == "valid" and "invalid_since" not in state.webhook_health(URL_B)
    assert state.webhook_health(URL_A)["invalid_since"] == "2026-11-20T12:00:00.000Z"

    # Still invalid: the same outage, not a second one.
    state.record_webhook_check(URL_A, "1", "invalid", T0 + timedelta(minutes=20))
    assert len(state.webhook_outages()) == 1
    closed = state.record_webhook_check(URL_A, "1", "valid", T0 + timedelta(minutes=30))
    assert closed == {"from": "2026-11-20T12:00:00.000Z", "to": "2026-11-20T12:30:00.000Z"}
    (outage,) = state.webhook_outages()
    assert outage["to"] == "2026-11-20T12:30:00.000Z"
    health = state.webhook_health(URL_A)
    assert "invalid_since" not in health and health["last_valid_at"] == "2026-11-20T12:30:00.000Z"


def test_a_webhook_never_seen_that_is_missing_is_a_first_registration_not_an_outage(state):
    state.record_webhook_check(URL_A, None, "missing", T0)
    assert state.webhook_outages() == [] and "invalid_since" not in state.webhook_health(URL_A)
    assert "webhook_id" not in state.webhook_health(URL_A)
    # Seen invalid with no valid check before: the outage starts now, with its status as the reason.
    state.record_webhook_check(URL_B, "2", "invalid", T0)
    (outage,) = state.webhook_outages()
    assert (outage["from"], outage["reason"], outage["webhook_url"]) == ("2026-11-20T12:00:00.000Z", "invalid", URL_B)


def test_a_webhook_that_disappears_after_being_valid_opens_an_outage_from_then(state):
    state.record_webhook_check(URL_A, "1", "valid", T0)
    state.record_webhook_check(URL_A, None, "missing", T0 + timedelta(hours=1))
    (outage,) = state.webhook_outages()
    assert outage["from"] == "2026-11-20T12:00:00.000Z" and outage["reason"] == "missing"
    assert state.webhook_health(URL_A)["webhook_id"] == "1"  # the id last seen stays known
    state.forget_webhook_health(URL_A)
    assert state.webhook_health(URL_A) is None and len(state.webhook_outages()) == 1



# --- the repair's scan: received in [since, until], both ends included, nothing else --------------------


def test_a_repair_scan_returns_the_events_received_in_its_window_ends_included_and_no_tombstone(stack):
    events = EventStore(stack.stack.physical("EventsTable"), retention_days=30)
    received = {}
    for offset, name in enumerate(["aaa/follow.json", "aaa/block.json", "aaa/mute.json", "aaa/unmute.json"]):
        record = deletion(name, received_at=T0 + timedelta(minutes=offset))  # any single-event fixture
        assert events.put_new(record) is True
        received[record.event_key] = record.received_at
    events.record_deletion(deletion(received_at=T0 + timedelta(minutes=1)), T0 + timedelta(minutes=1))

    window = sorted(events.received_between(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
                    key=lambda r: r.received_at)
    assert [r.received_at for r in window] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert all(received[r.event_key] == r.received_at for r in window)
    assert list(events.received_between(T0 + timedelta(minutes=4), T0 + timedelta(days=1))) == []


def test_a_closed_outage_keeps_the_id_it_was_opened_with_and_a_long_reason_is_cut(state):
    state.record_webhook_check(URL_A, None, "invalid", T0, "r" * 800)
    state.record_webhook_check(URL_A, "5", "valid", T0 + timedelta(minutes=1))
    (outage,) = state.webhook_outages()
    assert outage["reason"] == "r" * 500 and outage["webhook_id"] == "5"  # learnt when it closed
    state.record_webhook_check(URL_B, "6", "invalid", T0 + timedelta(seconds=30))  # (one webhook a reconcile run)
    state.record_webhook_check(URL_B, "7", "valid", T0 + timedelta(minutes=2))  # re-registered under a new id
    assert next(o for o in state.webhook_outages() if o["webhook_url"] == URL_B)["webhook_id"] == "6"


def test_times_are_stored_as_utc_milliseconds_whatever_zone_they_come_in():
    from datetime import timezone

    from xrelay.storage.store import iso

    assert iso(datetime(2026, 11, 20, 14, 0, 0, 123999, tzinfo=timezone(timedelta(hours=2)))) == "2026-11-20T12:00:00.123Z"
    assert iso(datetime(2026, 11, 20, 12, 0, tzinfo=UTC)) == "2026-11-20T12:00:00.000Z"
    # Sorted as strings (ByUser's ts, the repair's BETWEEN): fixed width, so text order is time order.
    times = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 999, 1000, 10_000, 86_400_000)]
    assert sorted(map(iso, times)) == list(map(iso, times))


def compressing_to(size: int) -> bytes:
    """Random (incompressible) bytes whose zlib level-6 compression is exactly ``size`` bytes."""
    source = incompressible(size + 200, seed=9)
    cut = size - 200
    while len(zlib.compress(source[:cut], 6)) < size:
        cut += 1
    assert len(zlib.compress(source[:cut], 6)) == size
    return source[:cut]


@pytest.mark.parametrize("compressed, parts", [(store.QUARANTINE_PART_BYTES, None), (store.QUARANTINE_PART_BYTES + 1, "2")])
def test_a_delivery_compressing_to_the_part_size_is_one_item_that_dynamodb_accepts(state, compressed, parts):
    assert store.QUARANTINE_PART_BYTES == 350_000  # with the other attributes, under DynamoDB's 400 KB
    body = compressing_to(compressed)
    assert state.quarantine("d" * 64, body, "r" * 3000, T0) is True  # a reason as long as one is kept
    (head,) = state_items_of(state, store.QUARANTINE)
    assert head.get("parts", {}).get("N") == parts
    assert [q["body"] for q in state.quarantined()] == [body]


# --- a property moto cannot show: reads that must see the write just made are strongly consistent -------


READS = ("GetItem", "Query", "Scan")


@pytest.fixture
def reads(faults):
    """(operation, ConsistentRead) of every DynamoDB read, as the store sent it (moto answers it either way)."""
    seen: list[tuple[str, object]] = []

    def record(aws, operation, params, real):
        seen.append((operation, params.get("ConsistentRead")))
        return real(params)

    for operation in READS:
        faults.inject("dynamodb", operation, record, times=10**6)
    return seen


def test_every_read_that_decides_a_write_or_an_answer_is_strongly_consistent(stack, reads, monkeypatch):
    """An eventually consistent read may miss the write just made: a second outage opened for one stretch,
    a torn-down state read as live, a quarantined delivery read without its last part."""
    state, events = StateStore(stack.stack.physical("StateTable")), EventStore(stack.stack.physical("EventsTable"), 30)
    monkeypatch.setattr(store, "QUARANTINE_PART_BYTES", 1000)
    state.quarantine("d1", incompressible(2500, seed=6), "why", T0)
    events.put_new(deletion("aaa/follow.json"))
    state.put_desired("{}", "x.yaml", T0)
    reads.clear()

    calls = {
        "get": lambda: events.get("k"),
        "received_between": lambda: list(events.received_between(T0, T0)),
        "quarantine parts": lambda: [q["body"] for q in state.quarantined()],
        "users": state.users,
        "desired": state.desired,
        "webhook_health": lambda: state.webhook_health(URL_A),
        "record_webhook_check": lambda: state.record_webhook_check(URL_A, "1", "valid", T0),
        "webhook_outages": state.webhook_outages,
        "torn_down_at": state.torn_down_at,
        "last_reconcile_run": state.last_reconcile_run,
    }
    for name, call in calls.items():
        reads.clear()
        call()
        consistent = [flag for operation, flag in reads]
        if name == "quarantine parts":  # the listing itself may lag; a delivery's parts may not
            consistent = consistent[1:]
        assert consistent and all(flag is True for flag in consistent), (name, reads)


def test_a_reprocessing_failures_reason_is_cut_like_the_first_one(state):
    state.quarantine("d1", b"x", "why", T0)
    state.mark_quarantine("d1", "pending", "p" * 2500)
    (kept,) = state.quarantined()
    assert kept["reason"] == "p" * 2000 + "...[500 more]" and kept["attempts"] == 1
