"""Normalisation at its limits: each bound at its value and one past it, times in every unit X uses,
and identities that fail late (issue 19).

The fixtures hold well-formed deliveries only, far from every bound, and one subscribed user each:
a limit off by one, a millisecond timestamp read as seconds, or a relation checked against the wrong
user would pass them.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from conftest import fixture_json
from xrelay.events.bounds import MAX_ID_CHARS
from xrelay.events.models import Source
from xrelay.events.normalize import (
    MAX_CONTROL_BYTES,
    MAX_TYPE_CHARS,
    UnrecognisedDelivery,
    deleted_post_id,
    normalize,
    parse_time,
    post_ids,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ME, OTHER = "2244994945", "3001969357"


def norm(doc):
    return normalize(doc, delivery="d" * 64, received_at=NOW)


def one(doc):
    result = norm(doc)
    assert result.errors == [], result.errors
    (record,) = result.events
    return record


def xaa(**data) -> dict:
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"].update(data)
    return doc


# --- bounds: at the limit kept, one past it refused (and the refusal says which limit) ---------------


def test_an_xaa_event_type_of_the_longest_allowed_length_is_kept_and_one_more_is_refused():
    kept = one(xaa(event_type="t" * MAX_TYPE_CHARS))
    assert kept.source_event_type == "t" * MAX_TYPE_CHARS and kept.known_type is False

    refused = norm(xaa(event_type="t" * (MAX_TYPE_CHARS + 1)))
    assert refused.events == [] and refused.errors == [f"XAA data.event_type is longer than {MAX_TYPE_CHARS} characters"]


def test_an_identifier_of_the_longest_allowed_length_is_kept_and_one_more_is_refused():
    long_id = "7" * (MAX_ID_CHARS - 1) + "x"  # valid up to its last character
    assert one(xaa(event_uuid=long_id)).event_key.endswith(":" + long_id)
    refused = norm(xaa(event_uuid=long_id + "x"))
    assert refused.events == []
    assert refused.errors == [f"XAA data.event_uuid is longer than {MAX_ID_CHARS} characters: not an identifier X gives"]


@pytest.mark.parametrize("uuid", ["", None, 2080761390344937796, ["1"]])
def test_an_event_uuid_that_is_not_a_string_identifier_is_refused(uuid):
    assert norm(xaa(event_uuid=uuid)).errors == ["XAA data.event_uuid is missing or not a string identifier"]


def test_an_aaa_array_name_of_the_longest_allowed_length_is_kept_and_one_more_is_refused():
    name = "x" * (MAX_TYPE_CHARS - len("_events")) + "_events"
    assert len(name) == MAX_TYPE_CHARS
    kept = one({"for_user_id": ME, name: [{"id_str": "5"}]})
    assert kept.event_key == f"aaa:{ME}:{name.removesuffix('_events')}:5" and kept.known_type is False

    refused = norm({"for_user_id": ME, "y" + name: [{"id_str": "5"}]})
    assert refused.events == [] and refused.errors == [f"AAA array name longer than {MAX_TYPE_CHARS} characters"]


def test_a_user_event_kind_of_the_longest_allowed_length_is_kept_and_one_more_is_refused():
    kind = "k" * MAX_TYPE_CHARS
    kept = one({"user_event": {kind: {"a": 1}}})
    assert kept.event_type == f"aaa.user_event.{kind}" and kept.user_id is None
    refused = norm({"user_event": {kind + "k": {"a": 1}}})
    assert refused.events == [] and refused.errors == [f"AAA user_event kind longer than {MAX_TYPE_CHARS} characters"]


def control_of_size(size: int) -> dict:
    body = {"job_id": "1", "job_state": "Complete", "job_state_description": ""}
    body["job_state_description"] = "d" * (size - len(json.dumps(body, separators=(",", ":"))))
    assert len(json.dumps(body, separators=(",", ":")).encode()) == size
    return {"replay_job_status": body}


def test_a_control_message_at_the_size_limit_is_recorded_and_one_byte_more_is_refused():
    (kept,) = norm(control_of_size(MAX_CONTROL_BYTES)).controls
    assert kept.kind == "replay_job_status" and kept.body["job_id"] == "1"

    refused = norm(control_of_size(MAX_CONTROL_BYTES + 1))
    assert refused.controls == [] and refused.events == []
    assert refused.errors == [f"replay_job_status is nested deeper than 100 levels or larger than "
                              f"{MAX_CONTROL_BYTES} bytes: not recorded"]


def test_an_oversize_control_message_is_quarantined_saying_so_not_as_an_unknown_shape(stack):
    from helpers import post, state_items

    code, answer = post(stack, json.dumps(control_of_size(MAX_CONTROL_BYTES + 1)).encode())
    assert (code, answer["quarantined"], answer["events"]) == (200, True, 0)
    assert answer["errors"] == [f"replay_job_status is nested deeper than 100 levels or larger than "
                                f"{MAX_CONTROL_BYTES} bytes: not recorded"]
    assert len(state_items(stack, "quarantine")) == 1 and state_items(stack, "replay_job_status") == []


def test_a_control_message_that_is_not_an_object_is_kept_as_its_value():
    (kept,) = norm({"replay_job_status": "Complete"}).controls
    assert kept.body == {"value": "Complete"}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_an_event_nested_at_the_limit_is_kept_and_one_level_deeper_is_set_aside():
    from xrelay.events.bounds import MAX_NESTING, nesting

    deep_ok = nested(MAX_NESTING - 1)
    assert nesting({"note": deep_ok}) == MAX_NESTING
    record = one({"for_user_id": ME, "tweet_create_events": [{"id_str": "5", "user": {"id_str": ME}}],
                  "note": deep_ok})
    assert record.event_key == f"aaa:{ME}:tweet:5"

    too_deep = norm({"for_user_id": ME, "tweet_create_events": [{"id_str": "5", "user": {"id_str": ME}}],
                     "note": nested(MAX_NESTING)})
    assert too_deep.events == [] and too_deep.errors == [f"aaa tweet_create event is nested deeper than {MAX_NESTING} levels"]


# --- times: every unit and format X uses --------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (1517588749178, datetime(2018, 2, 2, 16, 25, 49, 178000, tzinfo=UTC)),  # milliseconds
    ("1517588749178", datetime(2018, 2, 2, 16, 25, 49, 178000, tzinfo=UTC)),
    (1517588749, datetime(2018, 2, 2, 16, 25, 49, tzinfo=UTC)),  # seconds
    (100_000_000_001, datetime.fromtimestamp(100_000_000.001, UTC)),  # just above the split: milliseconds
    (99_999_999_999, datetime.fromtimestamp(99_999_999_999, UTC)),  # just below: seconds (year 5138)
    (1517588749.5, datetime(2018, 2, 2, 16, 25, 49, 500000, tzinfo=UTC)),
    ("2026-07-24T21:05:48.000Z", datetime(2026, 7, 24, 21, 5, 48, tzinfo=UTC)),
    ("2026-07-24T23:05:48+02:00", datetime(2026, 7, 24, 21, 5, 48, tzinfo=UTC)),  # an offset, converted
    ("2026-07-24T21:05:48", datetime(2026, 7, 24, 21, 5, 48, tzinfo=UTC)),  # no zone: X means UTC
    ("Mon May 19 14:01:46 +0000 2025", datetime(2025, 5, 19, 14, 1, 46, tzinfo=UTC)),  # v1.1
    ("Mon May 19 16:01:46 +0200 2025", datetime(2025, 5, 19, 14, 1, 46, tzinfo=UTC)),
])
def test_x_s_times_are_read_in_their_unit_and_zone(value, expected):
    parsed = parse_time(value)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", True, False, "yesterday", "2026-13-01T00:00:00Z", [], {}, 10**30,
                                   "Mon May 19 14:01:46 2025"])
def test_what_is_not_a_time_is_none_never_an_exception(value):
    assert parse_time(value) is None


def test_occurred_at_is_the_first_time_x_gives_in_its_order_of_preference():
    tweet = {"id_str": "5", "user": {"id_str": ME}, "timestamp_ms": "1517588749178",
             "created_at": "Mon May 19 14:01:46 +0000 2025"}
    assert one({"for_user_id": ME, "tweet_create_events": [tweet]}).occurred_at == \
        datetime(2018, 2, 2, 16, 25, 49, 178000, tzinfo=UTC)
    tweet["timestamp_ms"] = "not a time"  # the next one is used, not nothing
    assert one({"for_user_id": ME, "tweet_create_events": [tweet]}).occurred_at == \
        datetime(2025, 5, 19, 14, 1, 46, tzinfo=UTC)


def test_an_xaa_dm_takes_its_time_from_its_first_message_event():
    doc = fixture_json("xaa/18_dm.sent.json")
    doc["data"]["payload"] = {"direct_message_events": [{"created_timestamp": "1517588749178"},
                                                        {"created_timestamp": "1600000000000"}],
                              "created_at": "2026-07-24T21:05:48.000Z"}
    assert one(doc).occurred_at == datetime(2018, 2, 2, 16, 25, 49, 178000, tzinfo=UTC)


@pytest.mark.parametrize("stamp, kept", [
    ("1517588749178", True), (1517588749178, True), (0, True), ("9" * 20, True),
    ("9" * 21, False), (-1, False), (True, False), ("15175887491x8", False), ("", False), (1.5, False),
])
def test_a_typing_event_needs_a_millisecond_stamp_of_at_most_twenty_digits(stamp, kept):
    item = {"created_timestamp": stamp, "sender_id": OTHER, "target": {"recipient_id": ME}}
    result = norm({"for_user_id": ME, "direct_message_indicate_typing_events": [item]})
    if kept:
        (record,) = result.events
        assert record.event_key == f"aaa:{ME}:typing:{OTHER}>{ME}@{stamp}"
    else:
        assert result.events == []
        assert result.errors == ["AAA direct_message_indicate_typing_events[0].created_timestamp is missing or "
                                 "not a millisecond timestamp"]


# --- replays, relations and the posts an event carries -------------------------------------------------


@pytest.mark.parametrize("meta, replay", [
    ({"replay": True}, True), ({"replay": "true"}, True), ({"replay": "True"}, True), ({"replay": 1}, True),
    ({"replay": False}, False), ({"replay": "false"}, False), ({"replay": 0}, False), ({"replay": "yes"}, False),
    ({"replay": 2}, False), ({"replay": "1"}, False),
    ({}, False), ("replay", False), (None, False),
])
def test_only_what_x_sends_for_a_replay_marks_one(meta, replay):
    doc = fixture_json("aaa/follow.json") | {"meta": meta}
    record = one(doc)
    assert record.replay is replay
    assert record.event_key == "aaa:2244994945:follow:2244994945>3001969357@1517588749178"  # the same event


def test_a_replayed_stream_post_is_the_same_event_without_its_meta():
    doc = fixture_json("other/filtered_stream.json")
    plain, replayed = one(doc), one(doc | {"meta": {"replay": True}})
    assert (plain.event_key, plain.replay, replayed.replay) == (replayed.event_key, False, True)
    assert "meta" not in replayed.event and replayed.event == plain.event


def tweet(**fields) -> dict:
    return {"id_str": "900", "user": {"id_str": OTHER}, **fields}


@pytest.mark.parametrize("fields, relation", [
    ({"user": {"id_str": ME}}, "post.create"),
    ({"retweeted_status": {"id_str": "1", "user": {"id_str": ME}}}, "post.repost.create"),
    ({"quoted_status": {"id_str": "1", "user": {"id_str": ME}}}, "post.quote.create"),
    ({"in_reply_to_user_id_str": ME}, "post.reply.create"),
    ({"entities": {"user_mentions": [{"id_str": OTHER}, {"id_str": ME}]}}, "post.mention.create"),
    ({"extended_tweet": {"entities": {"user_mentions": [{"id_str": ME}]}}}, "post.mention.create"),
    # Someone else's post reposting, quoting, answering or mentioning someone else.
    ({"retweeted_status": {"id_str": "1", "user": {"id_str": "1" + ME}}, "in_reply_to_user_id_str": ME[:-1],
      "entities": {"user_mentions": [{"id_str": OTHER}]}}, "aaa.tweet_create"),
    # Both a reply to the user and a repost of theirs: the repost wins, as X's XAA types it.
    ({"retweeted_status": {"id_str": "1", "user": {"id_str": ME}}, "in_reply_to_user_id_str": ME}, "post.repost.create"),
])
def test_a_tweet_is_typed_by_its_relation_to_the_subscribed_user_alone(fields, relation):
    assert one({"for_user_id": ME, "tweet_create_events": [tweet(**fields)]}).event_type == relation


def test_a_dm_is_sent_or_received_from_the_subscribed_users_side():
    def dm(sender: str, type_: str | None = "message_create") -> dict:
        item = {"id": "77", "created_timestamp": "1517588749178", "message_create": {"sender_id": sender}}
        return item | ({"type": type_} if type_ else {})

    assert one({"for_user_id": ME, "direct_message_events": [dm(ME)]}).event_type == "dm.sent"
    assert one({"for_user_id": ME, "direct_message_events": [dm(OTHER)]}).event_type == "dm.received"
    assert one({"for_user_id": ME, "direct_message_events": [dm(ME, None)]}).event_type == "dm.sent"
    other = one({"for_user_id": ME, "direct_message_events": [dm(ME, "reaction_create")]})
    assert (other.event_type, other.known_type, other.source_event_type) == \
        ("aaa.direct_message.reaction_create", False, "reaction_create")


def test_a_mark_read_key_names_the_last_read_message_so_two_reads_are_two_events():
    def read(last: str | None) -> str:
        item = {"created_timestamp": "1518452444662", "sender_id": OTHER, "target": {"recipient_id": ME}}
        if last:
            item["last_read_event_id"] = last
        return one({"for_user_id": ME, "direct_message_mark_read_events": [item]}).event_key

    assert read("963085315333238788") == f"aaa:{ME}:read:{OTHER}>{ME}@1518452444662#963085315333238788"
    assert read("963085315333238789") != read("963085315333238788")
    assert read(None).endswith("#-")


def test_a_follow_of_an_unexpected_type_is_refused_and_one_without_users_too():
    follow = copy.deepcopy(fixture_json("aaa/follow.json"))
    follow["follow_events"][0]["type"] = "poke"
    assert norm(follow).errors == ["AAA follow_events[0] has an unexpected type"]
    follow = copy.deepcopy(fixture_json("aaa/follow.json"))
    del follow["follow_events"][0]["target"]
    assert norm(follow).errors == ["AAA follow_events[0] lacks source or target user ids"]


def test_a_revoke_names_the_app_and_falls_back_to_a_digest_of_its_body_for_a_time():
    doc = fixture_json("aaa/user_event_revoke.json")
    record = one(doc)
    assert record.user_id == "63046977" and record.occurred_at == datetime(2018, 5, 24, 9, 48, 12, tzinfo=UTC)
    del doc["user_event"]["revoke"]["date_time"]
    undated = one(doc)
    assert undated.event_key.startswith("aaa:63046977:revoke:13090192@sha256-") and undated.occurred_at is None
    doc["user_event"]["revoke"]["source"] = {}
    assert norm(doc).errors == ["AAA user_event.revoke has no source.user_id"]


def test_the_posts_a_repost_carries_are_its_own_the_original_and_what_the_original_quotes():
    doc = {"for_user_id": ME, "tweet_create_events": [tweet(
        id_str="900", retweeted_status={"id_str": "800", "user": {"id_str": ME},
                                        "quoted_status": {"id_str": "700", "user": {"id_str": OTHER}}})]}
    ids = post_ids(one(doc))
    assert (ids.own, ids.reposted, ids.embedded) == ("900", "800", frozenset({"700"}))
    assert ids.copies == {"800", "700"} and ids.all == {"900", "800", "700"}


def test_an_xaa_repost_names_the_retweeted_reference_and_its_included_neighbours_are_copies():
    doc = xaa(event_type="post.repost.create", payload={
        "id": "900", "referenced_tweets": [{"type": "quoted", "id": "600"}, {"type": "retweeted", "id": "800"}]},
        includes={"tweets": [{"id": "800"}, {"id": "700"}, "not a post", {"id": "900"}]})
    ids = post_ids(one(doc))
    assert (ids.own, ids.reposted, ids.embedded) == ("900", "800", frozenset({"700"}))  # 600 is only named


def test_a_deletion_names_its_post_and_carries_none():
    xaa_delete, aaa_delete = one(fixture_json("xaa/02_post.delete.json")), one(fixture_json("aaa/tweet_delete.json"))
    assert deleted_post_id(xaa_delete) == "2080761269309813134" and post_ids(xaa_delete).all == frozenset()
    assert deleted_post_id(aaa_delete) == "1045405559317569537" and post_ids(aaa_delete).all == frozenset()
    assert deleted_post_id(one(fixture_json("xaa/01_post.create.json"))) is None  # not a deletion


def test_the_stream_shape_needs_matching_rules_and_its_post_a_string_id():
    doc = fixture_json("other/filtered_stream.json")
    record = one(doc)
    assert record.source is Source.STREAM and record.subscription.matching_rules
    assert post_ids(record).own == "1346889436626259968"  # a stream event is its post: redacted when deleted
    quoting = copy.deepcopy(doc) | {"includes": {"tweets": [{"id": "55"}]}}
    quoting["data"]["referenced_tweets"] = [{"type": "retweeted", "id": "55"}]
    assert (post_ids(one(quoting)).own, post_ids(one(quoting)).reposted) == ("1346889436626259968", "55")
    with pytest.raises(UnrecognisedDelivery):
        norm({"data": doc["data"]})  # a post without matching_rules is no shape X sends
    doc["data"]["id"] = 1346889436626259968
    assert norm(doc).errors == ["filtered-stream data.id is missing or not a string identifier"]


def test_received_at_and_the_delivery_are_the_receipts_whatever_the_event_says():
    received = datetime(2026, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    (record,) = normalize(fixture_json("aaa/follow.json"), delivery="abc", received_at=received).events
    assert record.received_at == received and record.delivery_id == "abc"


@pytest.mark.parametrize("kind", ["suspend", "revoked", "revoke_all", "access"])  # around "revoke" in every order
def test_only_a_revoke_is_a_revoke_among_other_user_events(kind):
    body = {"date_time": "2018-05-24T09:48:12+00:00", "target": {"app_id": "13090192"},
            "source": {"user_id": "63046977"}}
    record = one({"user_event": {kind: body}})
    assert (record.event_type, record.known_type, record.user_id) == (f"aaa.user_event.{kind}", False, None)
    assert record.event_key.startswith(f"aaa:-:user_event.{kind}:sha256-")


def test_a_revoke_whose_body_is_not_an_object_is_kept_as_an_unknown_user_event():
    record = one({"user_event": {"revoke": "63046977"}})
    assert (record.event_type, record.user_id) == ("aaa.user_event.revoke", None)


def test_no_event_but_a_deletion_names_a_deleted_post_whatever_its_type():
    from conftest import all_fixtures

    named = {}
    for name in all_fixtures():
        if name == "other/unrecognised_shape.json":
            continue
        for record in norm(fixture_json(name)).events:
            named[(name, record.event_type)] = deleted_post_id(record)
    deletions = {key: post for key, post in named.items() if post is not None}
    assert deletions == {("aaa/tweet_delete.json", "post.delete"): "1045405559317569537",
                         ("xaa/02_post.delete.json", "post.delete"): "2080761269309813134"}
    assert ("xaa/04_post.reply.create.json", "post.reply.create") in named  # types after "post.delete" were asked


def test_among_aaa_events_only_a_tweet_create_is_a_post_of_its_own():
    from conftest import all_fixtures

    own = {}
    for name in all_fixtures():
        if name.startswith("aaa/"):
            for record in norm(fixture_json(name)).events:
                own[name] = post_ids(record).own
    assert {name: post for name, post in own.items() if post} == {
        "aaa/tweet_create.json": "1924465506158878979", "aaa/tweet_create_mention.json": "1924465506158878980",
        "aaa/tweet_create_reply.json": "1924465506158878981", "aaa/tweet_create_longform.json": "1924465506158878979",
        "aaa/tweet_create_two.json": "1924465506158878991"}
    like = one(fixture_json("aaa/favorite.json"))  # a like carries the liked post as a copy, not as its own
    assert (post_ids(like).own, post_ids(like).embedded) == (None, frozenset({"1924465506158878979"}))
