"""The metrics operators alarm on, read back from the EMF lines the functions print."""


from conftest import fixture_bytes
from helpers import crc, emf, post, values


def test_events_received_are_counted_per_source_and_type_once_per_delivery(stack, capsys):
    assert post(stack, fixture_bytes("aaa/tweet_create_two.json"))[0] == 200
    blobs = emf(capsys)
    assert values(blobs, "EventsReceived", Source="aaa", EventType="post.create", Stage="dev") == [2.0]
    assert values(blobs, "EventsStored", service="intake") == [2.0]


def test_duplicates_and_refusals_are_counted(stack, capsys):
    body = fixture_bytes("xaa/01_post.create.json")
    post(stack, body)
    post(stack, body)
    post(stack, body, secret="wrong")
    blobs = emf(capsys)
    assert values(blobs, "DuplicatesDropped", service="intake") == [1.0]
    assert values(blobs, "SignaturesRefused", service="intake", Stage="dev") == [1.0]


def test_crc_answers_and_refusals_are_counted(stack, capsys):
    crc(stack, "crc_token=abc")
    crc(stack, "crc_token=%7B%22a%22%3A1%7D")
    blobs = emf(capsys)
    assert values(blobs, "CrcAnswered", service="crc") == [1.0]
    assert values(blobs, "CrcRefused", service="crc") == [1.0]


def test_unknown_types_and_quarantine_are_counted(stack, capsys):
    post(stack, fixture_bytes("other/xaa_unknown_type.json"))
    post(stack, fixture_bytes("other/unrecognised_shape.json"))
    blobs = emf(capsys)
    assert values(blobs, "UnknownEventTypes", service="intake") == [1.0]
    assert values(blobs, "DeliveriesQuarantined", service="intake") == [1.0]


def test_crc_secret_failure_is_a_secret_failure_not_a_refused_token(stack, capsys):
    from aws_lambda_powertools.utilities.parameters import clear_caches

    from xrelay.aws import client

    client("secretsmanager").delete_secret(SecretId=stack.environment("CrcFunction")["X_APP_SECRET_ARN"],
                                           ForceDeleteWithoutRecovery=True)
    clear_caches()
    assert crc(stack, "crc_token=abc")[0] == 503
    blobs = emf(capsys)
    assert values(blobs, "SecretFailures", service="crc") == [1.0]
    assert values(blobs, "CrcRefused", service="crc") == []


def test_events_first_seen_in_a_replay_are_counted_as_recovered_and_replayed_duplicates_are_not(stack, capsys):
    import json

    live = json.loads(fixture_bytes("xaa/01_post.create.json"))
    replayed = {**live, "meta": {"replay": True}}
    post(stack, json.dumps(live).encode())
    post(stack, json.dumps(replayed).encode())  # already delivered live: nothing recovered
    missed = json.loads(fixture_bytes("xaa/02_post.delete.json"))
    post(stack, json.dumps({**missed, "meta": {"replay": True}}).encode())  # missed live: recovered
    blobs = emf(capsys)
    assert values(blobs, "EventsRecoveredByReplay", service="intake") == [1.0]
    assert values(blobs, "DuplicatesDropped", service="intake") == [1.0]
