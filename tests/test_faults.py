"""Fault injection against the in-process stack: AWS fails, and still nothing is lost and nothing stored twice.

Faults are injected at ``botocore.client.BaseClient._make_api_call``, the method every client operation
goes through. That is *above* botocore's retry handler (retries happen inside ``_make_request``, which
``_make_api_call`` calls), so one injected failure is one failed SDK call as the application sees it after
the client's standard retries (``xrelay.aws``: 3 attempts) were used up, which is the case the code must
handle. Injecting below the retry layer would only prove that botocore retries. The errors are the
modeled exception classes botocore itself raises for those codes (``client.exceptions.from_code``), or
``EndpointConnectionError`` for a network failure.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import fixture_bytes, fixture_json
from helpers import client_error, connection_error, crc, post, published_keys, receive_all, state_items, stored_keys
from xrelay.aws import client
from xrelay.events.normalize import delivery_id, normalize
from xrelay.publishing.publisher import SQS_MAX_BYTES, decode_message
from xrelay.receiving.signature import sign
from xrelay.storage.store import MAX_RECORD_BYTES, RecordTooLarge, StateStore, decode_record, encode_record
from xrelay.tools.local.local import DEV_CONSUMER_SECRET

POST_KEY = "xaa:post.create:user_id=1111111111111111111:2080761390344937796"
TWEET_KEYS = ["aaa:2244994945:tweet:1924465506158878990", "aaa:2244994945:tweet:1924465506158878991"]
DYNAMODB_ITEM_LIMIT = 409_600  # 400 KB; moto enforces 405,000


@pytest.fixture
def publisher_runs(stack, monkeypatch):
    """Each PublisherFunction invocation handed events: (their sequence numbers, what it answered).

    The table's other items (post references, tombstones; compliance.py) reach it through the
    stream too, in runs of their own or after the events: they are left out.
    """
    runs: list[tuple[list[str], dict[str, Any]]] = []
    real_invoke = stack.invoke

    def invoke(function: str, event: dict[str, Any]) -> Any:
        result = real_invoke(function, event)
        if function == "PublisherFunction":
            events = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]
                      if "record" in r["dynamodb"].get("NewImage", {})]
            if events:
                runs.append((events, result))
        return result

    monkeypatch.setattr(stack, "invoke", invoke)
    return runs


def events_table(stack) -> str:
    return stack.stack.physical("EventsTable")


def post_four_events(stack) -> list[str]:
    """Four new events in three deliveries; their keys, sorted."""
    for name in ("aaa/tweet_create_two.json", "xaa/01_post.create.json", "aaa/favorite.json"):
        assert post(stack, fixture_bytes(name))[0] == 200
    keys = stored_keys(stack)
    assert len(keys) == 4
    return keys


def failed_items(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


# ------------------------------------------------------------------------------------------- DynamoDB


def test_store_failing_mid_delivery_answers_503_and_the_redelivery_completes_it(stack, faults):
    """PutItem fails for the 2nd of 2 events: 503 so X retries; the retry stores the rest, each event once."""
    rule = faults.inject("dynamodb", "PutItem", client_error("ProvisionedThroughputExceededException", 400),
                         after=1, when=lambda params: params["TableName"] == events_table(stack))
    body = fixture_bytes("aaa/tweet_create_two.json")

    assert post(stack, body) == (503, {"error": "temporarily unavailable, retry"})
    assert rule.fired == 1
    # One of the two, whichever was written first: a delivery's events are written concurrently.
    assert len(stored_keys(stack)) == 1 and set(stored_keys(stack)) < set(TWEET_KEYS)
    assert state_items(stack, "quarantine") == []  # a transient failure is retried by X, not quarantined

    assert post(stack, body) == (200, {"status": "accepted", "events": 2, "new": 1, "duplicates": 1})
    assert stored_keys(stack) == TWEET_KEYS
    assert stack.drain() == 2
    assert published_keys(stack) == TWEET_KEYS


def test_store_unreachable_on_the_first_event_stores_nothing_and_the_retry_works(stack, faults):
    """DynamoDB unreachable: 503, nothing stored or streamed; X's retry stores and publishes the event once."""
    rule = faults.inject("dynamodb", "PutItem", connection_error)
    body = fixture_bytes("xaa/01_post.create.json")

    assert post(stack, body)[0] == 503
    assert rule.fired == 1
    assert stored_keys(stack) == [] and state_items(stack, "quarantine") == []
    assert stack.drain() == 0

    assert post(stack, body) == (200, {"status": "accepted", "events": 1, "new": 1, "duplicates": 0})
    stack.drain()
    assert published_keys(stack) == [POST_KEY]


# ------------------------------------------------------------------------------------------- SQS


def test_send_message_batch_failing_once_is_retried_from_the_failed_record(stack, faults, publisher_runs):
    """SendMessageBatch raises once: the whole batch is reported failed, re-read, and sent exactly once."""
    keys = post_four_events(stack)
    rule = faults.inject("sqs", "SendMessageBatch", client_error("RequestThrottled", 400))

    stack.drain()

    assert rule.fired == 1 and rule.matched == 2
    (first_seqs, first), (second_seqs, second) = publisher_runs
    assert failed_items(first) == first_seqs  # nothing was sent, so everything is reported failed
    assert (second_seqs, failed_items(second)) == (first_seqs, [])
    assert published_keys(stack) == keys


def test_partial_batch_failure_resends_only_from_the_failed_entry(stack, faults, publisher_runs):
    """SQS refuses the 2nd of 4 entries: the publisher reports it and every later record failed.

    The retry starts at the refused record, so the entries after it, which SQS had accepted, are sent
    again: exactly ``4 - 1 - 1 = 2`` duplicates (at-least-once; consumers dedupe on event_key), none lost.
    """
    keys = post_four_events(stack)
    refused = "1"
    first_call: list[str] = []

    def refuse_one_entry(aws, operation, params, real):
        entries = params["Entries"]
        first_call.extend(e["MessageAttributes"]["event_key"]["StringValue"] for e in entries)
        response = real({**params, "Entries": [e for e in entries if e["Id"] != refused]})
        response["Failed"] = [{"Id": refused, "SenderFault": False, "Code": "InternalError",
                               "Message": "injected entry failure"}]
        return response

    rule = faults.inject("sqs", "SendMessageBatch", refuse_one_entry)
    stack.drain()

    assert rule.fired == 1 and len(first_call) == 4
    (first_seqs, first), (second_seqs, second) = publisher_runs
    assert failed_items(first) == first_seqs[1:]  # from the refused record on
    assert second_seqs == first_seqs[1:] and failed_items(second) == []
    resent = first_call[int(refused) + 1:]
    assert len(resent) == 2
    assert sorted(first_call) == keys
    expected = Counter(keys) + Counter(resent)
    assert Counter(published_keys(stack)) == expected  # every event, and exactly the 2 allowed duplicates


# ------------------------------------------------------------------------------------------- Secrets Manager


def test_secret_unavailable_answers_503_and_stores_nothing(stack, faults):
    """GetSecretValue failing: intake and CRC answer 503 (never a 401/403 or a wrong token), nothing stored."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()
    rule = faults.inject("secretsmanager", "GetSecretValue", client_error("InternalServiceError", 500), times=2)
    body = fixture_bytes("xaa/01_post.create.json")

    assert post(stack, body) == (503, {"error": "temporarily unavailable"})
    assert crc(stack, "crc_token=abc") == (503, {"error": "temporarily unavailable"})
    assert rule.fired == 2
    assert stored_keys(stack) == [] and state_items(stack, "quarantine") == []
    assert stack.drain() == 0

    assert post(stack, body)[0] == 200
    assert crc(stack, "crc_token=abc") == (200, {"response_token": sign(DEV_CONSUMER_SECRET, b"abc")})
    stack.drain()
    assert published_keys(stack) == [POST_KEY]


# ------------------------------------------------------------------------------------------- size limits


def xaa_post_with_note(text: str) -> bytes:
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["payload"]["note_tweet"] = {"text": text}
    return json.dumps(doc).encode()


def incompressible(n: int) -> str:
    return base64.b64encode(random.Random(n).randbytes(n)).decode()


def normalised(body: bytes):
    (record,) = normalize(json.loads(body), delivery=delivery_id(body), received_at=datetime.now(UTC)).events
    return record


def test_event_too_large_for_sqs_is_published_as_a_pointer_to_the_stored_record(stack):
    """A ~300 KB post is stored (compressed) and travels as a pointer; the pointer leads to the full record."""
    rng = random.Random(300)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
    text = " ".join(rng.choice(words) for _ in range(60_000))
    body = xaa_post_with_note(text)
    assert len(normalised(body).model_dump_json()) > SQS_MAX_BYTES
    assert len(encode_record(normalised(body))) < MAX_RECORD_BYTES

    assert post(stack, body) == (200, {"status": "accepted", "events": 1, "new": 1, "duplicates": 0})
    assert stack.drain() == 1
    (message,) = receive_all(stack)
    assert len(message["Body"]) < 4096
    pointer = decode_message(message["Body"])
    assert (pointer.event_key, pointer.event, pointer.context) == (POST_KEY, None, None)
    assert pointer.stored is not None and pointer.stored.table == events_table(stack)
    assert message["MessageAttributes"]["event_key"]["StringValue"] == POST_KEY

    item = client("dynamodb").get_item(TableName=pointer.stored.table, ConsistentRead=True,
                                       Key={k: {"S": v} for k, v in pointer.stored.key.items()})["Item"]
    full = decode_record(item["record"]["B"])
    assert full.event["payload"]["note_tweet"]["text"] == text
    assert full.as_pointer(pointer.stored.table) == pointer


def test_event_too_large_for_the_event_store_is_quarantined_when_the_delivery_fits(stack):
    """A record over the item limit is not stored but the delivery is acknowledged and kept raw in quarantine."""
    body = xaa_post_with_note(incompressible(385_000))
    with pytest.raises(RecordTooLarge):
        encode_record(normalised(body))
    assert len(zlib.compress(body, 6)) < 400_000  # the quarantine item still fits

    code, answer = post(stack, body)
    assert code == 200 and answer["quarantined"] is True and "too large" in answer["errors"][0]
    assert stored_keys(stack) == []
    assert [q["body"] for q in StateStore(stack.stack.physical("StateTable")).quarantined()] == [body]
    assert post(stack, body)[0] == 200  # X's redelivery: still acknowledged, still one copy
    assert len(state_items(stack, "quarantine")) == 1


HUGE = 450_000  # random bytes, base64-encoded: ~600 KB of JSON, ~456 KB compressed


def test_delivery_too_large_even_for_quarantine_exceeds_every_dynamodb_item():
    """Preconditions of the next test: neither the record nor the compressed raw delivery fits one item."""
    body = xaa_post_with_note(incompressible(HUGE))
    with pytest.raises(RecordTooLarge):
        encode_record(normalised(body))
    assert len(zlib.compress(body, 6)) > DYNAMODB_ITEM_LIMIT


def test_delivery_too_large_even_for_quarantine_is_still_acknowledged_and_kept(stack):
    """Never dropped: a delivery no DynamoDB item can hold is acknowledged and kept where reprocess finds it."""
    body = xaa_post_with_note(incompressible(HUGE))
    code, answer = post(stack, body)
    assert (code, answer.get("quarantined")) == (200, True), answer
    assert [q["body"] for q in StateStore(stack.stack.physical("StateTable")).quarantined()] == [body]
