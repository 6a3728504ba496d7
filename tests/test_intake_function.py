"""IntakeFunction through its real handler against moto: what X sends, what gets stored."""

import json

import pytest

from conftest import fixture_bytes, fixture_json
from helpers import post, published_keys, state_items, stored_keys
from xrelay.receiving.signature import sign


def test_signed_delivery_is_stored_and_published_once(stack):
    body = fixture_bytes("xaa/01_post.create.json")
    assert post(stack, body) == (200, {"status": "accepted", "events": 1, "new": 1, "duplicates": 0})
    assert post(stack, body)[1]["duplicates"] == 1  # X redelivers: same event, nothing new
    key = "xaa:post.create:user_id=1111111111111111111:2080761390344937796"
    assert stored_keys(stack) == [key]
    stack.drain()
    assert published_keys(stack) == [key]


def test_minimal_copy_of_a_stored_event_is_a_duplicate(stack):
    post(stack, fixture_bytes("xaa/01_post.create.json"))
    assert post(stack, fixture_bytes("xaa/00_post.create.json"))[1] == {
        "status": "accepted", "events": 1, "new": 0, "duplicates": 1}


@pytest.mark.parametrize("headers,secret,status", [
    ({}, None, 401),
    ({"x-twitter-webhooks-signature": "sha256=garbage!"}, None, 401),
    ({"x-twitter-webhooks-signature": sign("not-the-secret", b"x")}, None, 403),
])
def test_unsigned_or_forged_requests_are_refused_and_touch_nothing(stack, headers, secret, status):
    code, body = post(stack, fixture_bytes("xaa/01_post.create.json"), secret=secret, headers=headers)
    assert code == status and body["error"]
    assert stored_keys(stack) == [] and state_items(stack, "quarantine") == []
    assert stack.drain() == 0


def test_signature_made_over_other_bytes_is_403(stack):
    body = fixture_bytes("xaa/01_post.create.json")
    forged = {"x-twitter-webhooks-signature": sign("xrelay-local-development-secret", body + b" ")}
    assert post(stack, body, secret=None, headers=forged)[0] == 403


def test_header_name_is_matched_in_any_case(stack):
    body = fixture_bytes("aaa/favorite.json")
    headers = {"X-Twitter-Webhooks-Signature": sign("xrelay-local-development-secret", body)}
    assert post(stack, body, secret=None, headers=headers)[0] == 200


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(stack):
    assert post(stack, fixture_bytes("aaa/favorite.json"), base64_body=True)[0] == 200


@pytest.mark.parametrize("body,reason", [
    (b"", "empty"), (b"not json", "not valid JSON"), (b"[1,2]", "JSON object, got list"),
    (b'"text"', "JSON object, got str"), (b"\xff\xfe\x00", "not valid JSON"),
])
def test_signed_body_that_is_not_a_json_object_is_400_with_a_reason(stack, body, reason):
    code, answer = post(stack, body)
    assert code == 400 and reason in answer["error"]
    assert stored_keys(stack) == []


def test_multi_event_delivery_stores_each_event(stack):
    code, body = post(stack, fixture_bytes("aaa/tweet_create_two.json"))
    assert (code, body["new"]) == (200, 2)
    assert len(stored_keys(stack)) == 2


def test_every_documented_delivery_is_accepted_and_stored(stack):
    from conftest import all_fixtures

    expected = 0
    for name in all_fixtures():
        if name.startswith("other/unrecognised") or name.startswith("other/xaa_missing"):
            continue
        code, body = post(stack, fixture_bytes(name))
        assert code == 200, (name, body)
        expected += body["new"]
    keys = stored_keys(stack)
    assert len(keys) == expected and len(set(keys)) == expected
    stack.drain()
    assert sorted(published_keys(stack)) == sorted(keys)


def test_replay_job_status_is_recorded_not_stored_as_an_event(stack):
    body = fixture_bytes("other/replay_job_status_complete.json")
    assert post(stack, body)[0] == 200
    assert post(stack, body)[0] == 200  # redelivered: still one record
    items = state_items(stack, "replay_job_status")
    assert [i["sk"]["S"] for i in items] == ["1995507200941260800#Complete"]
    assert stored_keys(stack) == []


def test_unknown_event_type_is_stored_published_and_flagged(stack):
    assert post(stack, fixture_bytes("other/xaa_unknown_type.json"))[0] == 200
    stack.drain()
    from helpers import receive_all

    (message,) = receive_all(stack)
    attrs = message["MessageAttributes"]
    assert attrs["known_type"]["StringValue"] == "false"
    assert attrs["event_type"]["StringValue"] == "post.edit"
    assert json.loads(message["Body"])["known_type"] is False


def test_unrecognised_shape_is_kept_raw_acknowledged_and_reprocessable(stack):
    body = fixture_bytes("other/unrecognised_shape.json")
    code, answer = post(stack, body)
    assert code == 200 and answer["quarantined"] is True
    (item,) = state_items(stack, "quarantine")
    assert item["status"]["S"] == "pending" and "no known shape" in item["reason"]["S"]
    assert post(stack, body)[0] == 200 and len(state_items(stack, "quarantine")) == 1


def test_partly_broken_delivery_stores_the_good_events_and_quarantines_the_whole(stack):
    doc = fixture_json("aaa/tweet_create_two.json")
    doc["tweet_create_events"].append({"text": "no id_str"})
    code, answer = post(stack, json.dumps(doc).encode())
    assert (code, answer["new"], answer["quarantined"]) == (200, 2, True)
    assert len(state_items(stack, "quarantine")) == 1


def test_dm_content_never_reaches_the_logs(stack, caplog):
    for name in ("intake", "publisher"):  # our loggers, at their most verbose
        caplog.set_level("DEBUG", logger=name)
    post(stack, fixture_bytes("aaa/direct_message.json"))
    post(stack, fixture_bytes("xaa/19_dm.received.json"))
    post(stack, fixture_bytes("xaa/16_chat.received.json"))
    post(stack, b'{"for_user_id": "1", "direct_message_events": [{"message_create": {"message_data": '
                b'{"text": "Hello World! but no id"}}}]}')  # quarantined: its error must not quote it
    stack.drain()
    ours = [r for r in caplog.records if r.name in ("intake", "publisher")]
    logged = "".join(r.getMessage() + str(vars(r)) for r in ours)
    assert "accepted" in logged  # the logs are there...
    for secret_text in ("Hello World!", "hello!", "CwABAAAAEzIwODA0MDA4MjUyMjcxMDAxNjALAAIA"):
        assert secret_text not in logged  # ...the messages are not
