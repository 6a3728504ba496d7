"""Issue 13, as properties: whatever a correctly signed body holds, intake's contract holds (against moto).

* never a 5xx while AWS is healthy: stored, kept raw and acknowledged, or refused with a 4xx;
* nothing stored twice: the same bytes again store nothing new;
* a valid redelivery afterwards is still deduplicated;
* the answer stays small.

Bounded for `make test` (a few dozen examples per property, no per-example deadline); `make fuzz`
runs the same properties with the "fuzz" profile (HYPOTHESIS_PROFILE=fuzz: 1,000 examples each, or
XRELAY_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import all_fixtures, fixture_bytes, fixture_json
from helpers import post, stored_keys

settings.register_profile("default", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=int(os.environ.get("XRELAY_FUZZ_EXAMPLES", "1000")), deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

VALID = fixture_bytes("xaa/01_post.create.json")
# Fixtures a delivery is mutated from (the other/ directory holds non-deliveries).
DELIVERIES = [name for name in all_fixtures() if name.startswith(("aaa/", "xaa/"))]

# Strings X's data can make awkward: half an emoji (a lone surrogate once JSON-escaped), a whole one,
# ids and filter values past DynamoDB's key limits, control characters, nothing at all.
AWKWARD = ["\ud83d", "cut \udc00 here", "\U0001F600", "x" * 3000, "\u0000\uffff", "", "1" * 129, "é" * 1100]
texts = st.one_of(st.text(max_size=12), st.sampled_from(AWKWARD))
ids = st.one_of(st.from_regex(r"[0-9]{1,19}", fullmatch=True), texts)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


json_values = st.recursive(
    st.one_of(scalars, st.integers(min_value=90, max_value=400).map(nested)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(texts, children, max_size=3)),
    max_leaves=12)

xaa_deliveries = st.fixed_dictionaries({"data": st.fixed_dictionaries(
    {"event_type": st.one_of(st.sampled_from(["post.create", "post.delete", "oauth.revoke", "dm.received"]), texts),
     "event_uuid": st.one_of(ids, json_values),
     "filter": st.one_of(st.dictionaries(st.sampled_from(["user_id", "keyword", "direction"]), ids, max_size=2),
                         json_values),
     "payload": st.one_of(st.fixed_dictionaries({"id": ids, "text": texts}), json_values)},
    optional={"tag": texts, "includes": json_values})},
    optional={"meta": st.one_of(st.just({"replay": True}), json_values)})

aaa_arrays = st.sampled_from(["tweet_create_events", "favorite_events", "tweet_delete_events", "follow_events",
                              "direct_message_events", "direct_message_mark_read_events", "whatever_events"])
aaa_items = st.one_of(
    st.fixed_dictionaries({"id": ids, "id_str": ids, "type": texts, "created_timestamp": st.one_of(ids, scalars)},
                          optional={"status": st.fixed_dictionaries({"id_str": ids}), "user": json_values,
                                    "source": json_values, "target": json_values, "text": texts}),
    json_values)
aaa_deliveries = st.builds(
    lambda user, arrays, extra: {"for_user_id": user, **arrays, **extra},
    st.one_of(ids, json_values),
    st.dictionaries(aaa_arrays, st.lists(aaa_items, max_size=4), max_size=2),
    st.dictionaries(st.sampled_from(["users", "apps", "user_event", "replay_job_status", "meta"]), json_values,
                    max_size=2))

other_documents = st.one_of(
    st.fixed_dictionaries({"replay_job_status": st.one_of(
        st.fixed_dictionaries({"job_id": st.one_of(ids, json_values), "job_state": st.one_of(texts, json_values)},
                              optional={"webhook_id": st.one_of(ids, json_values), "job_state_description": texts}),
        json_values)}),
    st.fixed_dictionaries({"data": st.one_of(st.fixed_dictionaries({"id": ids, "text": texts}), json_values),
                           "matching_rules": st.one_of(st.lists(json_values, max_size=2), json_values)}),
    st.dictionaries(texts, json_values, max_size=4),
    json_values)


def encoded(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # ASCII: lone surrogates become \\udXXX escapes, as X's would be


@st.composite
def mutated_fixtures(draw) -> bytes:
    """A real delivery with one value somewhere replaced by something awkward."""
    doc = fixture_json(draw(st.sampled_from(DELIVERIES)))
    container: Any = doc
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if not isinstance(container[key], dict | list) or draw(st.booleans()):
            container[key] = draw(json_values)
            break
        container = container[key]
    return encoded(doc)


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"data": {}}', b'{"for_user_id": "1"}', b"{" * 5000,
                     b"[" * 100_000 + b"]" * 100_000, b'{"data": {"event_uuid": "\\ud800", "payload": {}}}']))

bodies = st.one_of(xaa_deliveries.map(encoded), aaa_deliveries.map(encoded), other_documents.map(encoded),
                   mutated_fixtures(), raw_bodies)


def assert_contract(stack, body: bytes) -> None:
    code, answer = post(stack, body)
    assert code < 500, (code, answer, body[:300])  # AWS is healthy here: never a 5xx
    assert len(json.dumps(answer)) < 4000  # bounded, whatever the body held
    if code == 200:
        stored = stored_keys(stack)
        again_code, again = post(stack, body)  # X redelivers the same bytes
        assert again_code == 200 and again.get("new", 0) == 0, again
        assert stored_keys(stack) == stored  # nothing stored twice
    # A valid delivery X sends afterwards (stored before the property ran) is still a duplicate.
    assert post(stack, VALID)[1] == {"status": "accepted", "events": 1, "new": 0, "duplicates": 1}


def test_signed_bodies_of_any_shape_keep_the_intake_contract(stack):
    assert post(stack, VALID)[1]["new"] == 1

    @given(bodies)
    def check(body: bytes) -> None:
        assert_contract(stack, body)

    check()


def test_mutated_real_deliveries_keep_the_intake_contract(stack):
    assert post(stack, VALID)[1]["new"] == 1

    @given(mutated_fixtures())
    def check(body: bytes) -> None:
        assert_contract(stack, body)

    check()
