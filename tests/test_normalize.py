"""Normalisation and dedupe keys over every fixture (X's documented deliveries and our AAA ones)."""

import copy
import json
from datetime import UTC, datetime

import pytest

from conftest import all_fixtures, fixture_json
from xrelay.events.models import EventRecord, Source
from xrelay.events.normalize import UnrecognisedDelivery, normalize

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
U = "1111111111111111111"


def norm(doc):
    return normalize(doc, delivery="d" * 64, received_at=NOW)


EXPECTED = {
    # XAA: every event type of X's payload page -> key (type, filter, event_uuid)
    "xaa/00_post.create.json": ("xaa", "post.create", f"xaa:post.create:user_id={U}:2080761390344937796"),
    "xaa/01_post.create.json": ("xaa", "post.create", f"xaa:post.create:user_id={U}:2080761390344937796"),
    "xaa/02_post.delete.json": ("xaa", "post.delete", f"xaa:post.delete:user_id={U}:-2781149976877970683"),
    "xaa/03_post.mention.create.json": ("xaa", "post.mention.create",
                                        f"xaa:post.mention.create:user_id={U}:2080765813578191303"),
    "xaa/04_post.reply.create.json": ("xaa", "post.reply.create", f"xaa:post.reply.create:user_id={U}:3091827364059182736"),
    "xaa/05_post.quote.create.json": ("xaa", "post.quote.create", f"xaa:post.quote.create:user_id={U}:4172938465017283645"),
    "xaa/06_post.repost.create.json": ("xaa", "post.repost.create",
                                       f"xaa:post.repost.create:user_id={U}:5283049576128394756"),
    "xaa/07_like.create.json": ("xaa", "like.create",
                                f"xaa:like.create:direction=outbound,user_id={U}:-3402274206530057851"),
    "xaa/08_follow.follow.json": ("xaa", "follow.follow", f"xaa:follow.follow:user_id={U}:-7953119945885597316"),
    "xaa/09_follow.unfollow.json": ("xaa", "follow.unfollow", f"xaa:follow.unfollow:user_id={U}:-4233426745281461957"),
    "xaa/10_profile.update.bio.json": ("xaa", "profile.update.bio",
                                       f"xaa:profile.update.bio:user_id={U}:-8917909039855612786"),
    "xaa/11_profile.update.profile_picture.json": ("xaa", "profile.update.profile_picture",
                                                   f"xaa:profile.update.profile_picture:user_id={U}:3497989179769309099"),
    "xaa/12_profile.update.banner_picture.json": ("xaa", "profile.update.banner_picture",
                                                  f"xaa:profile.update.banner_picture:user_id={U}:5061407317112342192"),
    "xaa/13_profile.update.screenname.json": ("xaa", "profile.update.screenname",
                                              f"xaa:profile.update.screenname:user_id={U}:4123434298221215973"),
    "xaa/14_profile.update.geo.json": ("xaa", "profile.update.geo", f"xaa:profile.update.geo:user_id={U}:8309664692915093892"),
    "xaa/15_profile.update.url.json": ("xaa", "profile.update.url", f"xaa:profile.update.url:user_id={U}:-6055744140117128555"),
    "xaa/16_chat.received.json": ("xaa", "chat.received", f"xaa:chat.received:user_id={U}:8511582263942905822"),
    "xaa/17_chat.sent.json": ("xaa", "chat.sent", f"xaa:chat.sent:user_id={U}:3723060601307155846"),
    "xaa/18_dm.sent.json": ("xaa", "dm.sent", f"xaa:dm.sent:user_id={U}:-3577827201104920132"),
    "xaa/19_dm.received.json": ("xaa", "dm.received", f"xaa:dm.received:user_id={U}:-6850472171600526495"),
    "xaa/20_news.new.json": ("xaa", "news.new", "xaa:news.new:keyword=OpenAI:2080756868147019827"),
    "xaa/21_spaces.start.json": ("xaa", "spaces.start", f"xaa:spaces.start:user_id={U}:4093201169289922041"),
    "xaa/22_spaces.end.json": ("xaa", "spaces.end", f"xaa:spaces.end:user_id={U}:-498317022904955631"),
    "xaa/23_broadcast.start.json": ("xaa", "broadcast.start",
                                    "xaa:broadcast.start:user_id=1234567890123456789:1234567890123456789"),
    "xaa/24_broadcast.end.json": ("xaa", "broadcast.end", "xaa:broadcast.end:user_id=1234567890123456789:2234567890123456789"),
    "xaa/25_broadcast.chat.json": ("xaa", "broadcast.chat", f"xaa:broadcast.chat:user_id={U}:7365873565827875221"),
    "xaa/26_oauth.revoke.json": ("xaa", "oauth.revoke", "xaa:oauth.revoke:-:5934540941047412905"),
    # AAA (v2 and legacy enterprise share the shape)
    "aaa/tweet_create.json": ("aaa", "post.create", "aaa:2244994945:tweet:1924465506158878979"),
    "aaa/tweet_create_mention.json": ("aaa", "post.mention.create", "aaa:2244994945:tweet:1924465506158878980"),
    "aaa/tweet_create_reply.json": ("aaa", "post.reply.create", "aaa:2244994945:tweet:1924465506158878981"),
    "aaa/tweet_create_longform.json": ("aaa", "post.create", "aaa:1603419180975409153:tweet:1924465506158878979"),
    "aaa/favorite.json": ("aaa", "like.create", "aaa:2244994945:favorite:a7ba59eab0bfcba386f7acedac279542"),
    "aaa/follow.json": ("aaa", "follow.follow", "aaa:2244994945:follow:2244994945>3001969357@1517588749178"),
    "aaa/unfollow.json": ("aaa", "follow.unfollow", "aaa:2244994945:unfollow:2244994945>3001969357@1517588749178"),
    "aaa/block.json": ("aaa", "block.block", "aaa:2244994945:block:2244994945>3001969357@1517588749178"),
    "aaa/unblock.json": ("aaa", "block.unblock", "aaa:2244994945:unblock:2244994945>3001969357@1517588749178"),
    "aaa/mute.json": ("aaa", "mute.mute", "aaa:2244994945:mute:2244994945>3001969357@1517588749178"),
    "aaa/unmute.json": ("aaa", "mute.unmute", "aaa:2244994945:unmute:2244994945>3001969357@1517588749178"),
    "aaa/direct_message.json": ("aaa", "dm.received", "aaa:4337869213:dm:954491830116155396"),
    "aaa/indicate_typing.json": ("aaa", "dm.indicate_typing", "aaa:4337869213:typing:3284025577>3001969357@1518127183443"),
    "aaa/mark_read.json": ("aaa", "dm.read",
                           "aaa:4337869213:read:199566737>3001969357@1518452444662#963085315333238788"),
    "aaa/tweet_delete.json": ("aaa", "post.delete", "aaa:930524282358325248:tweet_delete:1045405559317569537"),
    "aaa/user_event_revoke.json": ("aaa", "oauth.revoke", "aaa:63046977:revoke:13090192@2018-05-24T09:48:12+00:00"),
    "aaa/undocumented_array.json": ("aaa", "aaa.tweet_edit", "aaa:2244994945:tweet_edit:1924465506158878999"),
    "other/filtered_stream.json": ("stream", "stream.post", "stream:post:1346889436626259968"),
    "other/xaa_replayed_like.json": ("xaa", "like.create",
                                     f"xaa:like.create:direction=outbound,user_id={U}:-3402274206530057851"),
    "other/xaa_unknown_type.json": ("xaa", "post.edit", f"xaa:post.edit:user_id={U}:1999999999999999999"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_delivery_gives_its_record(name):
    source, event_type, key = EXPECTED[name]
    result = norm(fixture_json(name))
    assert not result.errors
    first = result.events[0]
    assert (first.source.value, first.event_type, first.event_key) == (source, event_type, key)
    # The record survives its own JSON round trip (what the queue and the store carry).
    assert EventRecord.model_validate_json(first.model_dump_json()) == first


def test_every_fixture_is_covered():
    skipped = {"other/replay_job_status_complete.json", "other/replay_job_status_incomplete.json",
               "other/unrecognised_shape.json", "other/xaa_missing_uuid.json", "aaa/tweet_create_two.json"}
    assert set(all_fixtures()) - skipped == set(EXPECTED)


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if n.startswith("xaa/")])
def test_xaa_event_is_kept_untouched(name):
    doc = fixture_json(name)
    before = json.dumps(doc, sort_keys=True)
    record = norm(doc).events[0]
    assert record.event == doc["data"]
    assert json.dumps(doc, sort_keys=True) == before
    assert record.known_type
    assert record.subscription.filter == doc["data"]["filter"]
    assert record.subscription.tag == doc["data"].get("tag")


def test_minimal_and_full_copies_of_one_event_share_a_key():
    a = norm(fixture_json("xaa/00_post.create.json")).events[0]
    b = norm(fixture_json("xaa/01_post.create.json")).events[0]
    assert a.event_key == b.event_key


def test_same_uuid_under_other_event_type_or_filter_is_another_event():
    doc = fixture_json("xaa/01_post.create.json")
    mention = copy.deepcopy(doc)
    mention["data"]["event_type"] = "post.mention.create"
    other_filter = copy.deepcopy(doc)
    other_filter["data"]["filter"] = {"user_id": "2222222222222222222"}
    keys = {norm(d).events[0].event_key for d in (doc, mention, other_filter)}
    assert len(keys) == 3


def test_replayed_copy_with_changed_counters_is_the_same_event():
    follow = fixture_json("aaa/follow.json")
    replayed = copy.deepcopy(follow)
    replayed["meta"] = {"replay": True}
    replayed["follow_events"][0]["source"]["followers_count"] += 1000
    replayed["follow_events"][0]["target"]["statuses_count"] += 7
    a, b = norm(follow).events[0], norm(replayed).events[0]
    assert a.event_key == b.event_key
    assert (a.replay, b.replay) == (False, True)

    post = fixture_json("xaa/01_post.create.json")
    bumped = copy.deepcopy(post)
    bumped["data"]["payload"]["public_metrics"]["like_count"] = 99
    assert norm(post).events[0].event_key == norm(bumped).events[0].event_key


def test_the_json_number_id_of_a_post_is_never_the_key():
    doc = fixture_json("aaa/tweet_create_longform.json")
    tweet = doc["tweet_create_events"][0]
    # As delivered, X's number id (1924465506158879000) has lost precision: id_str is the truth.
    assert str(tweet["id"]) != tweet["id_str"]
    assert norm(doc).events[0].event_key.endswith(":" + tweet["id_str"])
    del tweet["id_str"]
    result = norm(doc)
    assert result.events == [] and "id_str" in result.errors[0]


def test_longform_post_keeps_its_extended_text():
    record = norm(fixture_json("aaa/tweet_create_longform.json")).events[0]
    assert record.event["extended_tweet"]["full_text"].startswith("The Antikythera Mechanism")
    assert record.event["truncated"] is True


def test_one_delivery_with_several_events_gives_one_record_each():
    result = norm(fixture_json("aaa/tweet_create_two.json"))
    assert [r.event_key for r in result.events] == ["aaa:2244994945:tweet:1924465506158878990",
                                                    "aaa:2244994945:tweet:1924465506158878991"]
    mixed = fixture_json("aaa/follow.json") | fixture_json("aaa/favorite.json")
    assert {r.event_type for r in norm(mixed).events} == {"follow.follow", "like.create"}


def test_aaa_context_travels_with_the_event():
    dm = norm(fixture_json("aaa/direct_message.json")).events[0]
    assert set(dm.context) == {"apps", "users"}
    assert dm.user_id == dm.subscription.for_user_id == "4337869213"
    mention = norm(fixture_json("aaa/tweet_create_mention.json")).events[0]
    assert mention.context == {"user_has_blocked": "false"}


def test_dm_sent_by_the_subscribed_user_is_dm_sent():
    doc = fixture_json("aaa/direct_message.json")
    doc["direct_message_events"][0]["message_create"]["sender_id"] = "4337869213"
    assert norm(doc).events[0].event_type == "dm.sent"


def test_unknown_types_are_kept_and_flagged():
    edit = norm(fixture_json("other/xaa_unknown_type.json")).events[0]
    assert edit.known_type is False and edit.event["payload"]["new_field"] == [1, 2]
    aaa = norm(fixture_json("aaa/undocumented_array.json")).events[0]
    assert aaa.known_type is False and aaa.context == {"new_top_level_key": {"x": 1}}


def test_revoke_without_for_user_id_belongs_to_the_revoking_user():
    record = norm(fixture_json("aaa/user_event_revoke.json")).events[0]
    assert record.user_id == "63046977" and record.subscription.for_user_id == "63046977"
    xaa = norm(fixture_json("xaa/26_oauth.revoke.json")).events[0]
    assert xaa.user_id == U and xaa.subscription.tag is None


def test_replay_job_status_is_a_control_message_not_an_event():
    result = norm(fixture_json("other/replay_job_status_incomplete.json"))
    assert result.events == [] and result.controls[0].body["job_state"] == "Incomplete"


def test_filtered_stream_keeps_rules_and_includes():
    record = norm(fixture_json("other/filtered_stream.json")).events[0]
    assert record.source is Source.STREAM
    assert record.subscription.matching_rules[0]["tag"] == "xdev posts"
    assert record.event["includes"]["users"][0]["username"] == "XDevelopers"


def test_shapes_nobody_knows_are_refused_for_quarantine():
    with pytest.raises(UnrecognisedDelivery):
        norm(fixture_json("other/unrecognised_shape.json"))
    assert "event_uuid" in norm(fixture_json("other/xaa_missing_uuid.json")).errors[0]


def test_one_bad_item_spoils_only_itself():
    doc = fixture_json("aaa/tweet_create_two.json")
    doc["tweet_create_events"].insert(1, "not an object")
    result = norm(doc)
    assert len(result.events) == 2 and len(result.errors) == 1


def test_occurred_at_comes_from_the_event():
    assert norm(fixture_json("xaa/01_post.create.json")).events[0].occurred_at == datetime(2026, 7, 24, 21, 5, 48,
                                                                                           tzinfo=UTC)
    assert norm(fixture_json("aaa/favorite.json")).events[0].occurred_at.year == 2018
    assert norm(fixture_json("xaa/10_profile.update.bio.json")).events[0].occurred_at is None


def test_deprecated_alias_is_canonicalised():
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["event_type"] = "chat.conversation_join"
    record = norm(doc).events[0]
    assert record.event_type == "chat.conversation.join" and record.source_event_type == "chat.conversation_join"
    assert record.known_type


def test_a_post_known_only_by_its_json_number_id_is_not_keyed_on_it():
    """X's own longform example rounds the number (…879000 for id_str …878979): never a key."""
    doc = fixture_json("aaa/tweet_create.json")
    del doc["tweet_create_events"][0]["id_str"]
    out = norm(doc)
    assert out.events == [] and "id_str" in out.errors[0]  # kept raw by intake, not mis-keyed


def test_a_delete_with_a_numeric_status_id_is_not_keyed_on_it():
    doc = fixture_json("aaa/tweet_delete.json")
    doc["tweet_delete_events"][0]["status"]["id"] = 1045405559317569537
    assert norm(doc).events == []


def test_follow_without_timestamp_keeps_its_key_when_counters_change():
    doc = fixture_json("aaa/follow.json")
    del doc["follow_events"][0]["created_timestamp"]
    replay = copy.deepcopy(doc)
    replay["follow_events"][0]["source"]["followers_count"] += 100
    replay["meta"] = {"replay": True}
    assert norm(doc).events[0].event_key == norm(replay).events[0].event_key


def test_undocumented_aaa_delivery_keeps_its_key_when_replayed():
    doc = {"for_user_id": "2244994945", "brand_new_thing": {"id": "1"}}
    replayed = {**doc, "meta": {"replay": True}}
    first, again = norm(doc).events[0], norm(replayed).events[0]
    assert first.event_key == again.event_key and again.replay and not first.known_type
