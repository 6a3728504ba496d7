"""Issue 19: compliance (xrelay.publishing.compliance) under DynamoDB throttling, with values that have units and
margins, and with more than one of a thing (two copies, two users, two revocations, two deletions racing).

DynamoDB answers a BatchGetItem or BatchWriteItem it could only partly serve with ``UnprocessedKeys`` /
``UnprocessedItems`` (not an error), and the caller is to retry those with exponential backoff (the
DynamoDB API reference, BatchGetItem and BatchWriteItem). moto never does: here a wrapping client
answers like DynamoDB under throttling, with part or all of the request unprocessed. The limits checked
on every call are DynamoDB's: 100 keys a BatchGetItem, 25 writes a BatchWriteItem.

Everything goes through the real handlers of the local stack (intake, then the publisher on the events
table's stream), except the compliance message's cap, checked on ``deletion_notice``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import fixture_json
from helpers import client_error, post, receive_all
from xrelay.aws import client
from xrelay.events.models import EventRecord, RedactionReason, Source
from xrelay.events.normalize import normalize
from xrelay.publishing import compliance
from xrelay.publishing.compliance import NOTICE_MAX_KEYS, Tombstone, deletion_notice, skeleton
from xrelay.publishing.publisher import decode_message
from xrelay.storage.store import EventStore


def favorites(*likes: tuple[str, str], quoting: dict[str, str] | None = None) -> bytes:
    """One AAA delivery: like ``id`` of post ``liked`` for each (id, liked); ``quoting[liked]``: the post it quotes."""
    quoting = quoting or {}

    def liked_post(liked: str) -> dict[str, Any]:
        status = {"id_str": liked, "text": f"words of {liked}"}
        if liked in quoting:
            status["quoted_status"] = {"id_str": quoting[liked], "text": f"words of {quoting[liked]}"}
        return status

    return json.dumps({"for_user_id": "42", "favorite_events": [
        {"id": like, "favorited_status": liked_post(liked), "timestamp_ms": "1700000000000"}
        for like, liked in likes]}).encode()


def like_each(stack, *likes: tuple[str, str], quoting: dict[str, str] | None = None) -> None:
    """One delivery a like. Intake writes a delivery's events concurrently, and moto's stream numbers
    concurrent writes racily (two records may get one sequence number, which DynamoDB never gives)."""
    for like in likes:
        assert accepted(stack, favorites(like, quoting=quoting))["new"] == 1


def deletion(post_id: str) -> bytes:
    return json.dumps({"for_user_id": "42", "tweet_delete_events": [
        {"status": {"id": post_id, "user_id": "7"}, "timestamp_ms": "1700000000000"}]}).encode()


def like_key(like: str) -> str:
    return f"aaa:42:favorite:{like}"


def accepted(stack, body: bytes) -> dict:
    code, answer = post(stack, body)
    assert code == 200, answer
    return answer


def table(stack) -> str:
    return stack.stack.physical("EventsTable")


def stored(stack, key: str) -> EventRecord:
    record = EventStore(table(stack), 30).get(key)
    assert record is not None, key
    return record


def item(stack, key: str) -> dict[str, Any] | None:
    return client("dynamodb").get_item(TableName=table(stack), Key={"pk": {"S": key}},
                                       ConsistentRead=True).get("Item")


def queued(stack) -> list[EventRecord]:
    return [decode_message(m["Body"]) for m in receive_all(stack)]


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff compliance sleeps between retries of unprocessed keys or items (not slept here)."""
    slept: list[float] = []
    monkeypatch.setattr(compliance.time, "sleep", slept.append)
    return slept


@pytest.fixture
def runs(stack, monkeypatch):
    """The failures each PublisherFunction invocation answered."""
    seen: list[list[str]] = []
    real_invoke = stack.invoke

    def invoke(function: str, event: dict[str, Any]) -> Any:
        result = real_invoke(function, event)
        if function == "PublisherFunction":
            seen.append([f["itemIdentifier"] for f in result["batchItemFailures"]])
        return result

    monkeypatch.setattr(stack, "invoke", invoke)
    return seen


def unprocessed_keys(keep: int = 0):
    """BatchGetItem under throttling: the first ``keep`` keys served, the others left unprocessed."""
    def action(aws, operation, params, real):
        ((name, request),) = params["RequestItems"].items()
        served, left = request["Keys"][:keep], request["Keys"][keep:]
        response = real({"RequestItems": {name: {**request, "Keys": served}}}) if served else {"Responses": {name: []}}
        response["UnprocessedKeys"] = {name: {**request, "Keys": left}} if left else {}
        return response
    return action


def unprocessed_items(keep: int = 0):
    """BatchWriteItem under throttling: the first ``keep`` writes done, the others left unprocessed."""
    def action(aws, operation, params, real):
        ((name, writes),) = params["RequestItems"].items()
        done, left = writes[:keep], writes[keep:]
        response = real({"RequestItems": {name: done}}) if done else {}
        response["UnprocessedItems"] = {name: left} if left else {}
        return response
    return action


# ------------------------------------------------------------------------------------------- throttling


def test_tombstone_reads_left_unprocessed_are_retried_and_a_deletion_before_the_post_still_wins(stack, faults,
                                                                                               sleeps, runs):
    accepted(stack, deletion("11"))
    accepted(stack, deletion("12"))
    stack.drain()
    receive_all(stack)
    rule = faults.inject("dynamodb", "BatchGetItem", unprocessed_keys(keep=1))  # one tombstone now, one later
    like_each(stack, ("a", "11"), ("b", "12"))
    stack.drain()

    assert rule.fired == 1 and sleeps == [0.05] and all(failed == [] for failed in runs)
    published = {r.event_key: r for r in queued(stack)}
    assert sorted(published) == [like_key("a"), like_key("b")]
    for like, post_id in (("a", "11"), ("b", "12")):  # what came back first is kept, what came later is added
        (redaction,) = published[like_key(like)].redactions
        assert redaction.post_id == post_id and f"words of {post_id}" not in json.dumps(published[like_key(like)].event)


def test_tombstone_reads_never_processed_fail_the_batch_after_the_backoff_and_the_retry_redacts(stack, faults,
                                                                                               sleeps, runs):
    accepted(stack, deletion("11"))
    stack.drain()
    receive_all(stack)
    rule = faults.inject("dynamodb", "BatchGetItem", unprocessed_keys(), times=8)
    accepted(stack, favorites(("a", "11")))
    start = len(runs)
    stack.drain()

    assert rule.fired == 8
    # Eight tries, doubling from 50 ms and capped at a second: 4.55 s, well inside the publisher's 30 s.
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1, 1, 1]
    assert len(runs[start]) == 1 and runs[start + 1] == []  # the batch failed whole, then went through
    (like,) = queued(stack)  # sent once, by the retry, redacted
    assert like.event_key == like_key("a") and like.redacted


def test_post_references_left_unprocessed_are_retried_and_later_find_the_copy(stack, faults, sleeps, runs):
    rule = faults.inject("dynamodb", "BatchWriteItem", unprocessed_items(keep=1))
    like_each(stack, ("a", "11"), ("b", "11"))
    stack.drain()
    assert rule.fired == 1 and sleeps == [0.05] and all(failed == [] for failed in runs)
    for like in "ab":
        assert item(stack, f"post-ref#11#{like_key(like)}") is not None

    receive_all(stack)
    accepted(stack, deletion("11"))
    stack.drain()
    (notice,) = [r for r in queued(stack) if r.source is Source.XRELAY]
    assert notice.event["redacted_event_keys"] == [like_key("a"), like_key("b")]
    assert stored(stack, like_key("a")).redacted and stored(stack, like_key("b")).redacted


def test_post_references_never_processed_fail_the_batch_and_nothing_goes_out_unchecked(stack, faults, sleeps, runs):
    rule = faults.inject("dynamodb", "BatchWriteItem", unprocessed_items(), times=8)
    accepted(stack, favorites(("a", "11")))
    stack.drain()
    assert rule.fired == 8 and len(sleeps) == 8
    assert len(runs[0]) == 1 and runs[1] == []
    assert [r.event_key for r in queued(stack)] == [like_key("a")]
    assert item(stack, f"post-ref#11#{like_key('a')}") is not None


def test_a_batch_carrying_many_posts_reads_and_writes_within_dynamodbs_batch_limits(stack, faults):
    """60 likes of posts that quote others: 120 posts, so 120 tombstone reads and 120 references. Two posts
    deleted beforehand, one read in each BatchGetItem, are both redacted from the last like in one rewrite."""
    likes = [(f"l{i:02}", f"3{i:02}") for i in range(60)]
    quoting = {liked: f"4{i:02}" for i, (_, liked) in enumerate(likes)}
    accepted(stack, deletion("459"))  # quoted by the last like's post, read in the second BatchGetItem...
    accepted(stack, deletion("359"))  # ...and that post itself, read in the first
    stack.drain()
    receive_all(stack)
    reads: list[int] = []
    writes: list[int] = []

    def counting(sizes: list[int], request: str, limit: int):
        def action(aws, operation, params, real):
            ((_, batch),) = params["RequestItems"].items()
            size = len(batch[request] if request else batch)
            assert size <= limit, (operation, size)
            sizes.append(size)
            return real(params)
        return action

    faults.inject("dynamodb", "BatchGetItem", counting(reads, "Keys", 100), times=10**6)
    faults.inject("dynamodb", "BatchWriteItem", counting(writes, "", 25), times=10**6)
    like_each(stack, *likes, quoting=quoting)
    stack.drain()

    assert reads == [100, 20] and writes == [25, 25, 25, 25, 20]
    published = {r.event_key: r for r in queued(stack)}
    assert len(published) == 60
    assert [r.post_id for r in published[like_key("l59")].redactions] == ["359", "459"]  # one rewrite, both
    assert not any(published[like_key(like)].redacted for like, _ in likes[:-1])
    stored_item = item(stack, like_key("l59"))  # the item's redaction attributes name the latest
    assert (stored_item["redacted_by"]["S"], stored_item["rev"]) == ("aaa:42:tweet_delete:459", {"N": "1"})
    assert item(stack, f"post-ref#459#{like_key('l59')}") is not None


# ------------------------------------------------------------------------------------------- two of a thing


def test_a_rewrite_racing_ours_on_one_copy_is_kept_and_ours_lands_on_top_of_it(stack, faults):
    """Another writer rewrites the copy between our read and our write (another deletion's redaction):
    our conditional put fails, we read again and redact on top of it, and the revision counts both."""
    accepted(stack, favorites(("a", "11")))
    stack.drain()
    original = item(stack, like_key("a"))

    def concurrent_writer(aws, operation, params, real):
        real({"TableName": params["TableName"], "Item": {**original, "rev": {"N": "1"}}})  # someone else's rewrite
        return real(params)  # ours, conditional on no revision yet: refused, so retried

    rule = faults.inject("dynamodb", "PutItem", concurrent_writer,
                         when=lambda p: p["Item"]["pk"]["S"] == like_key("a") and "rev" in p["Item"])
    accepted(stack, deletion("11"))
    stack.drain()

    assert rule.fired == 1
    after = item(stack, like_key("a"))
    assert after["rev"] == {"N": "2"}
    assert [r.post_id for r in stored(stack, like_key("a")).redactions] == ["11"]


@pytest.mark.parametrize("lost,fails", [(4, False), (5, True)], ids=["4-lost-races", "5-lost-races"])
def test_a_copy_that_keeps_changing_is_tried_five_times_then_the_batch_is_retried(stack, faults, runs, lost, fails):
    accepted(stack, favorites(("a", "11")))
    stack.drain()
    rule = faults.inject("dynamodb", "PutItem", client_error("ConditionalCheckFailedException", 400), times=lost,
                         when=lambda p: p["Item"]["pk"]["S"] == like_key("a") and "rev" in p["Item"])
    accepted(stack, deletion("11"))
    start = len(runs)
    stack.drain()

    assert rule.fired == lost
    assert [bool(failed) for failed in runs[start:]] == ([True, False] if fails else [False])
    assert stored(stack, like_key("a")).redacted


def test_the_compliance_message_names_at_most_500_copies_and_counts_them_all():
    tombstone = Tombstone(post_id="11", deleted_at="2026-01-01T00:00:00.000Z", deleted_by="aaa:42:tweet_delete:11",
                          delivery_id="0" * 64, noted_at="2026-01-01T00:00:01.000Z", user_id="7")
    copies = [like_key(f"{i:03}") for i in range(NOTICE_MAX_KEYS + 1)]
    notice = deletion_notice(tombstone, list(reversed(copies)))
    assert notice.event["redacted_event_keys"] == copies[:500]
    assert notice.event["redacted_event_keys_total"] == 501
    assert (notice.event_key, notice.user_id, notice.source) == ("xrelay:post.redacted:11", "7", Source.XRELAY)
    assert len(notice.model_dump_json()) < 256 * 1024  # it must fit one message: it cannot travel as a pointer


def test_a_skeleton_keeps_ids_at_any_depth_of_lists_and_drops_what_is_left_empty():
    """Lists inside lists (ids grouped, objects among them): ids stay, words go, and a container left
    with nothing in it goes too, so a redacted record does not show where content was."""
    assert skeleton({
        "group_ids": [["1", "2"], [], [{"id": "3", "text": "words"}]],
        "words": [["a", "b"], [{"text": "c"}]],
        "nested": {"inner": {"text": "x"}, "list": [{"text": "y"}]},
        "filter": {"text": "kept whole"},
        "media": {"id": "9"},
        "created_at": "2026-01-01", "author_id": "7", "text": "gone",
    }) == {"group_ids": [["1", "2"], [{"id": "3"}]], "filter": {"text": "kept whole"},
           "created_at": "2026-01-01", "author_id": "7"}


# ------------------------------------------------------------------------------------------- revocations


A, B = "1111111111111111111", "3333333333333333333"
AT = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


def dm_of(user: str, dm_id: str, at: datetime) -> dict:
    """xaa/18_dm.sent.json sent by ``user`` at ``at``."""
    doc = fixture_json("xaa/18_dm.sent.json")
    data = doc["data"]
    data["event_uuid"], data["filter"] = f"-{dm_id}", {"user_id": user}
    (dm,) = data["payload"]["direct_message_events"]
    dm["id"], dm["created_timestamp"], dm["message_create"]["sender_id"] = dm_id, str(int(at.timestamp() * 1000)), user
    return doc


def revoke_of(user: str, at: datetime, uuid: str) -> dict:
    doc = fixture_json("xaa/26_oauth.revoke.json")
    doc["data"]["event_uuid"] = uuid
    doc["data"]["payload"].update(user_id=user, date_time=at.isoformat())
    return doc


def key_of(doc: dict) -> str:
    (record,) = normalize(doc, delivery="d" * 64, received_at=datetime.now(UTC)).events
    return record.event_key


def text_kept(stack, doc: dict) -> bool:
    return "Thanks for the update!" in json.dumps(stored(stack, key_of(doc)).event)


def test_a_revocation_purges_its_own_users_private_events_up_to_the_millisecond_and_no_one_elses(purging_stack):
    stack = purging_stack
    a_before, a_at, b_before = dm_of(A, "1", AT - timedelta(hours=1)), dm_of(A, "2", AT), dm_of(B, "3", AT)
    for doc in (a_before, a_at, b_before):
        accepted(stack, json.dumps(doc).encode())
    stack.drain()
    revoke = revoke_of(A, AT, "901")
    accepted(stack, json.dumps(revoke).encode())
    stack.drain()
    assert not text_kept(stack, a_before) and not text_kept(stack, a_at)  # up to the revocation, included
    assert text_kept(stack, b_before)  # another user's
    (redaction,) = stored(stack, key_of(a_at)).redactions
    assert (redaction.reason, redaction.by) == (RedactionReason.USER_REVOKED, key_of(revoke))

    # Arriving later (a replay): checked against the marker on the way out, to the millisecond.
    late_at, late_after, late_b = dm_of(A, "4", AT), dm_of(A, "5", AT + timedelta(milliseconds=1)), dm_of(B, "6", AT)
    for doc in (late_at, late_after, late_b):
        accepted(stack, json.dumps({**doc, "meta": {"replay": True}}).encode())
    receive_all(stack)
    stack.drain()
    out = {r.event_key: r for r in queued(stack)}
    assert out[key_of(late_at)].redacted and not out[key_of(late_after)].redacted and not out[key_of(late_b)].redacted


def test_an_older_revocation_arriving_later_leaves_the_marker_at_the_newer_one(purging_stack):
    stack = purging_stack
    newer, older = revoke_of(A, AT, "901"), revoke_of(A, AT - timedelta(days=1), "902")
    accepted(stack, json.dumps(newer).encode())
    stack.drain()
    accepted(stack, json.dumps(older).encode())
    stack.drain()
    marker = item(stack, f"revoked-user#{A}")
    assert (marker["revoked_at"]["S"], marker["revoked_by"]["S"]) == ("2026-08-01T12:00:00.000Z", key_of(newer))
    between = dm_of(A, "7", AT - timedelta(hours=1))  # after the older, before the newer: still purged
    accepted(stack, json.dumps({**between, "meta": {"replay": True}}).encode())
    receive_all(stack)
    stack.drain()
    (published,) = queued(stack)
    assert published.redacted and published.redactions[0].by == key_of(newer)


def test_a_revocation_purges_a_private_event_already_redacted_for_a_deleted_post(purging_stack):
    """Two redactions of one record for two reasons: the post's deletion took the embedded post, the
    user's revocation still takes the rest (a like is private: event_types.is_purged_on_revoke)."""
    stack = purging_stack
    accepted(stack, favorites(("a", "11")))
    accepted(stack, deletion("11"))
    stack.drain()
    assert [r.reason for r in stored(stack, like_key("a")).redactions] == [RedactionReason.POST_DELETED]
    accepted(stack, json.dumps(revoke_of("42", datetime(2030, 1, 1, tzinfo=UTC), "903")).encode())
    stack.drain()
    record = stored(stack, like_key("a"))
    assert [r.reason for r in record.redactions] == [RedactionReason.POST_DELETED, RedactionReason.USER_REVOKED]
    assert item(stack, like_key("a"))["rev"] == {"N": "2"}


def test_the_reads_that_decide_what_goes_out_are_strongly_consistent(stack, faults):
    """A tombstone written a moment ago by intake may be missing from an eventually consistent read
    (DynamoDB's read consistency), which would let a deleted post's content out. moto serves every read
    consistently, so the request itself is checked."""
    reads: list[tuple[str, Any]] = []

    def consistent(aws, operation, params, real):
        if operation == "BatchGetItem":
            reads.extend((operation, r.get("ConsistentRead")) for r in params["RequestItems"].values())
        else:
            reads.append((operation, params.get("ConsistentRead")))
        return real(params)

    for operation in ("BatchGetItem", "GetItem"):
        faults.inject("dynamodb", operation, consistent, times=10**6,
                      when=lambda p: p.get("TableName", table(stack)) == table(stack))
    accepted(stack, deletion("11"))
    accepted(stack, favorites(("a", "11")))
    stack.drain()

    assert ("BatchGetItem", True) in reads and ("GetItem", True) in reads
    assert all(consistent is True for _, consistent in reads), reads
    assert stored(stack, like_key("a")).redacted


# ------------------------------------------------------------------------------------------- units and margins


def epoch(value: dict[str, str]) -> int:
    return int(value["N"])


def test_expiries_the_event_and_its_references_after_the_retention_tombstones_and_markers_two_days_later(
        purging_stack):
    stack = purging_stack
    retention = int(stack.environment("PublisherFunction")["RETENTION_DAYS"])
    assert retention == 30  # the template's default
    accepted(stack, favorites(("a", "11")))
    accepted(stack, deletion("11"))
    before = datetime.now(UTC)
    accepted(stack, json.dumps(revoke_of(A, AT, "901")).encode())
    stack.drain()
    after = datetime.now(UTC)

    event = stored(stack, like_key("a"))
    days = timedelta(days=1).total_seconds()
    event_expiry = epoch(item(stack, like_key("a"))["expires_at"])
    assert event_expiry == int((event.received_at + timedelta(days=retention)).timestamp())
    assert epoch(item(stack, f"post-ref#11#{like_key('a')}")["expires_at"]) == event_expiry  # goes with its event
    tombstone = epoch(item(stack, "deleted-post#11")["expires_at"])
    assert 2 * days - 60 < tombstone - event_expiry <= 2 * days + 60  # outlives the copies it must redact
    marker = epoch(item(stack, f"revoked-user#{A}")["expires_at"])
    assert int((before + timedelta(days=retention + 2)).timestamp()) - 1 <= marker
    assert marker <= int((after + timedelta(days=retention + 2)).timestamp())
