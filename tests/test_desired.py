"""The desired-state file of ``xrelay subscriptions apply``: parsing, line-level errors, the models.

Snippets mark the line an error must point at with ``# <-`` (see :func:`marked_line`), so each
expected line number is visible next to the YAML it refers to.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from conftest import FIXTURES, ROOT
from xrelay.events import event_types
from xrelay.events.event_types import needs_user_context
from xrelay.subscriptions.desired import (
    AaaUser,
    DesiredState,
    DesiredStateError,
    Problem,
    WebhookSpec,
    XaaSubscriptionSpec,
    load_desired,
)

DESIRED = FIXTURES / "desired"

EXAMPLE = """\
webhook:
  url: https://abc123.execute-api.us-east-1.amazonaws.com/webhook   # registered if missing, re-validated if invalid
account_activity:            # AAA: all activity of these users (each has authorized the app)
  - user_id: "4337869213"
activity:                    # XAA subscriptions, delivered to the webhook above
  - event_type: post.create
    filter: {user_id: "2244994945"}
    tag: posts
  - event_type: like.create
    filter: {user_id: "4337869213", direction: inbound}
prune: true                  # delete what X has that is not declared here (default false: report only)
"""

WEBHOOK = "webhook:\n  url: https://example.com/webhook\n"


def doc(body: str) -> str:
    """A file with a valid webhook and ``body`` (dedented) after it."""
    return WEBHOOK + textwrap.dedent(body)


def marked_line(text: str) -> int:
    """1-based line of the single ``# <-`` marker in ``text``."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    assert len(lines) == 1, "a snippet marks exactly one line"
    return lines[0]


def problems(text: str, source: str = "subs.yaml") -> list[Problem]:
    with pytest.raises(DesiredStateError) as caught:
        load_desired(text, source)
    return caught.value.problems


def only_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def subscription(event_type: str, filter_: str, tag: str | None = None) -> str:
    lines = f"activity:\n  - event_type: {event_type}\n    filter: {filter_}\n"
    return doc(lines + (f"    tag: {tag}\n" if tag is not None else ""))


# --- Valid files ---------------------------------------------------------------------------------


def test_the_documented_example_parses():
    state = load_desired(EXAMPLE, "subs.yaml")

    assert state.webhook == WebhookSpec(url="https://abc123.execute-api.us-east-1.amazonaws.com/webhook")
    assert state.account_activity == [AaaUser(user_id="4337869213")]
    assert state.activity == [
        XaaSubscriptionSpec(event_type="post.create", filter={"user_id": "2244994945"}, tag="posts"),
        XaaSubscriptionSpec(event_type="like.create", filter={"user_id": "4337869213", "direction": "inbound"}),
    ]
    assert state.prune is True
    assert state.warnings == []


def test_valid_fixture_loads_with_warnings_for_alias_and_unquoted_id():
    state = load_desired((DESIRED / "valid.yaml").read_text(), "valid.yaml")

    assert [u.user_id for u in state.account_activity] == ["4337869213", "2244994945"]
    assert [s.event_type for s in state.activity] == [
        "post.create", "like.create", "follow.follow", "chat.conversation.join", "news.new", "profile.update.bio",
    ]
    assert state.activity[4].filter == {"keyword": "solar eclipse"}
    assert state.activity[5].filter == {"user_id": "2244994945"}  # block-style filter
    assert state.prune is False
    assert state.warnings == [
        'valid.yaml:6: user_id 2244994945 is unquoted; quote it ("2244994945") so YAML keeps it a string',
        "valid.yaml:15: event_type 'chat.conversation_join' is a deprecated alias; using 'chat.conversation.join'",
    ]


def test_optional_sections_default_to_empty_and_report_only():
    state = load_desired(WEBHOOK + "account_activity:\nactivity: []\n")

    assert (state.account_activity, state.activity, state.prune) == ([], [], False)


# --- Every problem of a file, at once, with its line ---------------------------------------------


def test_invalid_fixture_reports_every_problem_with_its_line():
    with pytest.raises(DesiredStateError) as caught:
        load_desired((DESIRED / "invalid.yaml").read_text(), "invalid.yaml")

    found = [(p.line, p.message) for p in caught.value.problems]
    expected = [
        (3, "webhook url must start with https://"),
        (3, "webhook url must not include a port"),
        (4, "unknown key 'acount_activity' in the file (did you mean 'account_activity'?)"),
        (8, "duplicate account_activity user 4337869213 (first at line 7)"),
        (9, "user_id must be a quoted numeric string"),
        (10, "user_id '@jack' is not a user id"),
        (12, "unknown event_type 'post.created' (did you mean 'post.create'?); valid: block.block, "),
        (15, "post.create does not take filter key 'direction'"),
        (17, "direction 'both' must be one of: inbound, outbound"),
        (19, "news.new does not take filter key 'user_id'"),
        (19, "news.new needs filter key 'keyword'"),
        (20, "event_type 'oauth.revoke' cannot be subscribed to"),
        (23, "tag must be 1-200 characters, got 0"),
        (24, "duplicate subscription: profile.update.bio with filter {user_id: 2244994945} is already declared at "
             "line 21"),
        (28, "user_id 0x1F is read by YAML as the integer 31"),
        (29, "prune must be true or false; got the string 'sometimes'"),
    ]
    assert len(found) == len(expected), found
    for (line, message), (want_line, want_text) in zip(found, expected, strict=True):
        assert line == want_line and want_text in message, (line, message)
    # One error, one problem per line of its text, each as FILE:LINE: message.
    assert str(caught.value).splitlines()[0].startswith("invalid.yaml:3: webhook url must start with https://")
    assert all(row.startswith("invalid.yaml:") for row in str(caught.value).splitlines())
    assert len(str(caught.value).splitlines()) == len(expected)


def test_problems_in_several_sections_are_reported_together():
    text = "webhook: {}\nactivity:\n  - event_type: dm.sent\n  - event_type: nope\nprune: 1\n"

    found = problems(text, "f.yaml")

    assert [p.line for p in found] == [1, 3, 4, 5]
    assert "webhook is missing 'url'" in found[0].message
    assert "dm.sent needs filter key 'user_id'" in found[1].message
    assert "unknown event_type 'nope'" in found[2].message
    assert "prune must be true or false" in found[3].message


# --- Event types ---------------------------------------------------------------------------------


def test_unknown_event_type_suggests_and_lists_the_valid_ones_from_event_types():
    text = doc("""\
        activity:
          - event_type: post.created   # <-
            filter: {user_id: "2244994945"}
        """)

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert found.message.startswith("unknown event_type 'post.created' (did you mean 'post.create'?); valid: ")
    valid = found.message.split("; valid: ")[1].split(", ")
    assert valid == sorted(event_types.XAA_EVENT_TYPES - {"oauth.revoke"})  # canonical and subscribable only
    assert "chat.conversation_join" not in valid


def test_event_type_is_matched_case_sensitively_but_suggested_case_insensitively():
    found = only_problem(subscription("Post.Create", '{user_id: "1"}'))

    assert "(did you mean 'post.create'?)" in found.message


def test_alias_is_normalised_to_its_canonical_name_with_a_warning():
    text = doc("""\
        activity:
          - event_type: chat.conversation_join   # <-
            filter: {user_id: "4337869213"}
        """)

    state = load_desired(text, "subs.yaml")

    assert state.activity[0].event_type == "chat.conversation.join"
    assert state.warnings == [f"subs.yaml:{marked_line(text)}: event_type 'chat.conversation_join' is a deprecated "
                              "alias; using 'chat.conversation.join'"]


def test_alias_and_canonical_name_are_the_same_subscription():
    text = doc("""\
        activity:
          - event_type: chat.conversation.join
            filter: {user_id: "5"}
          - event_type: chat.conversation_join   # <-
            filter: {user_id: "5"}
        """)

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert found.message == "duplicate subscription: chat.conversation.join with filter {user_id: 5} is already " \
                            "declared at line 4"


def test_oauth_revoke_is_not_subscribable():
    text = doc("""\
        activity:
          - event_type: oauth.revoke   # <-
        """)

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert "cannot be subscribed to" in found.message and "without a subscription" in found.message


def test_a_type_added_to_event_types_is_accepted_without_touching_desired(monkeypatch):
    text = subscription("post.bookmark.create", '{user_id: "2244994945"}')
    assert "unknown event_type 'post.bookmark.create'" in only_problem(text).message

    monkeypatch.setattr(event_types, "XAA_EVENT_TYPES", event_types.XAA_EVENT_TYPES | {"post.bookmark.create"})

    state = load_desired(text)
    assert state.activity[0].event_type == "post.bookmark.create"
    assert state.activity[0].needs_user_context  # unclassified types default to private
    assert "post.bookmark.create" in only_problem(subscription("post.bookmarked", "{}")).message.split("valid: ")[1]


def test_a_type_made_subscribable_in_event_types_takes_its_documented_filter(monkeypatch):
    monkeypatch.setattr(event_types, "XAA_UNSUBSCRIBABLE", {})

    state = load_desired(doc("activity:\n  - event_type: oauth.revoke\n"))

    assert state.activity[0].filter == {}  # "Filters: none"


def test_event_type_facts_only_name_types_of_the_one_list():
    named = (set(event_types.XAA_FILTER_KEYS_BY_TYPE) | set(event_types.XAA_UNSUBSCRIBABLE)
             | event_types.XAA_PUBLIC_EVENT_TYPES | set(event_types.XAA_ALIASES.values()))

    assert named <= event_types.XAA_EVENT_TYPES, named - event_types.XAA_EVENT_TYPES
    assert not set(event_types.XAA_ALIASES) & event_types.XAA_EVENT_TYPES


# --- Filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "filter_", "message"),
    [
        ("post.create", '{user_id: "1", direction: inbound}',
         "post.create does not take filter key 'direction' (only follow.follow, follow.unfollow, like.create take "
         "it); post.create takes: user_id"),
        ("mute.mute", '{user_id: "1", direction: outbound}',
         "mute.mute does not take filter key 'direction' (only follow.follow, follow.unfollow, like.create take it); "
         "mute.mute takes: user_id"),
        ("like.create", '{user_id: "1", keyword: solar}',
         "like.create does not take filter key 'keyword' (only news.new take it); like.create takes: direction, "
         "user_id"),
        ("news.new", '{keyword: solar, user_id: "1"}',
         "news.new does not take filter key 'user_id'; news.new takes: keyword"),
        ("follow.follow", '{user_id: "1", usr: "2"}',
         "unknown filter key 'usr' (did you mean 'user_id'?); follow.follow takes: direction, user_id"),
        ("like.create", '{user_id: "1", direction: both}', "direction 'both' must be one of: inbound, outbound"),
        ("news.new", f'{{keyword: {"k" * 151}}}', "keyword must be 1-150 characters, got 151"),
    ],
)
def test_filter_keys_and_values_are_checked_per_event_type(event_type, filter_, message):
    text = subscription(event_type, filter_ + "   # <-")

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert found.message == message


@pytest.mark.parametrize(("event_type", "filter_", "missing"), [
    ("profile.update.bio", "{}", "user_id"),
    ("news.new", '{user_id: "1"}', "keyword"),
])
def test_a_missing_required_filter_key_points_at_the_filter(event_type, filter_, missing):
    text = subscription(event_type, filter_ + "   # <-")

    found = [p for p in problems(text) if "needs" in p.message]

    assert found == [Problem(marked_line(text), f"{event_type} needs filter key '{missing}'")]


def test_a_missing_filter_points_at_the_entry():
    text = doc("""\
        activity:
          - event_type: block.block   # <-
            tag: blocks
        """)

    assert only_problem(text) == Problem(marked_line(text), "block.block needs filter key 'user_id'")


@pytest.mark.parametrize("event_type", ["like.create", "follow.follow", "follow.unfollow"])
def test_direction_is_accepted_where_any_source_documents_it(event_type):
    state = load_desired(subscription(event_type, '{user_id: "4337869213", direction: outbound}'))

    assert state.activity[0].filter == {"user_id": "4337869213", "direction": "outbound"}


def test_filter_must_be_a_mapping():
    text = subscription("post.create", '"2244994945"   # <-')

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert found.message.startswith("filter must be a mapping")


# --- User ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "message"), [
    ('"abc"', "user_id 'abc' is not a user id (1-19 digits, as a quoted string)"),
    ('"12345678901234567890"', "user_id '12345678901234567890' is not a user id"),
    ('""', "user_id '' is not a user id"),
    ("-5", "user_id '-5' is not a user id"),
    ("4337869213.0", 'user_id must be a quoted numeric string like "2244994945"; got the number 4337869213.0'),
    ("4.3e+9", "got the number 4300000000.0"),
    ("true", "got the boolean true"),
    ("", "got nothing"),
    ("012", "user_id 012 is read by YAML as the integer 10; write the id as a quoted string"),
    ("0x1F", "user_id 0x1F is read by YAML as the integer 31"),
    ("4_337_869_213", "user_id 4_337_869_213 is read by YAML as the integer 4337869213"),
    ("+42", "user_id +42 is read by YAML as the integer 42"),
])
def test_user_ids_must_be_numeric_strings(written, message):
    for text in (doc(f"account_activity:\n  - user_id: {written}   # <-\n"),
                 subscription("post.create", f"{{user_id: {written}}}   # <-")):
        found = only_problem(text)

        assert found.line == marked_line(text)
        assert message in found.message


def test_an_unquoted_user_id_that_reads_back_exactly_is_accepted_with_a_warning():
    text = doc("""\
        account_activity:
          - user_id: 4337869213   # <-
        activity:
          - event_type: like.create
            filter: {user_id: 1234567890123456789, direction: inbound}
        """)

    state = load_desired(text, "subs.yaml")

    assert state.account_activity[0].user_id == "4337869213"
    assert state.activity[0].filter["user_id"] == "1234567890123456789"
    line = marked_line(text)
    assert state.warnings == [
        f'subs.yaml:{line}: user_id 4337869213 is unquoted; quote it ("4337869213") so YAML keeps it a string',
        f'subs.yaml:{line + 3}: user_id 1234567890123456789 is unquoted; quote it ("1234567890123456789") so YAML '
        "keeps it a string",
    ]


def test_quoted_and_unquoted_ids_are_the_same_user():
    text = doc("""\
        account_activity:
          - user_id: "4337869213"
          - user_id: 4337869213   # <-
        """)

    assert only_problem(text) == Problem(marked_line(text), "duplicate account_activity user 4337869213 (first at "
                                                            "line 4)")


# --- Webhook -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.com/webhook", "webhook url must start with https://"),
    ("example.com/webhook", "webhook url must start with https://"),
    ("https://example.com:5000/webhook", "must not include a port (X refuses URLs with one): example.com:5000"),
    ("https://example.com:443/webhook", "must not include a port"),
    ("https://[2001:db8::1]:8443/webhook", "must not include a port"),
    ("https:///webhook", "webhook url has no host"),
    ("https://example.com/" + "w" * 181, "webhook url is 201 characters; X allows at most 200"),
    ('""', "webhook url is empty"),
    ("[a, b]", "webhook url must be a string; got a list"),
])
def test_webhook_url_rules(url, message):
    text = f"webhook:\n  url: {url}   # <-\n"

    found = only_problem(text)

    assert found.line == marked_line(text)
    assert message in found.message


def test_webhook_url_of_exactly_200_characters_and_ipv6_host_without_port_are_fine():
    url = "https://example.com/" + "w" * 180

    assert load_desired(f"webhook:\n  url: {url}\n").webhook.url == url
    assert load_desired("webhook:\n  url: https://[2001:db8::1]/webhook\n").webhook.url.startswith("https://[")


def test_missing_webhook_and_missing_url():
    assert only_problem("activity: []\n") == Problem(1, "missing 'webhook' (a mapping with the https url X "
                                                        "delivers to)")
    text = "prune: false\nwebhook:   # <-\n  path: /webhook\n"
    found = problems(text)
    assert [p.line for p in found] == [marked_line(text), 3]
    assert found[0].message == "webhook is missing 'url'"
    assert found[1].message == "unknown key 'path' in webhook; expected: url"


def test_a_misspelt_key_is_reported_once_not_also_as_missing():
    text = "webhok:   # <-\n  url: https://example.com/webhook\n"

    assert only_problem(text) == Problem(marked_line(text), "unknown key 'webhok' in the file (did you mean "
                                                            "'webhook'?); expected: webhook, account_activity, "
                                                            "activity, prune")


# --- Tags, duplicates, structure -----------------------------------------------------------------


@pytest.mark.parametrize(("tag", "message"), [
    ('""', "tag must be 1-200 characters, got 0"),
    ("t" * 201, "tag must be 1-200 characters, got 201"),
    ("2024", "tag must be a string; got the integer 2024"),
])
def test_tag_rules(tag, message):
    text = subscription("post.create", '{user_id: "1"}', f"{tag}   # <-")

    assert only_problem(text) == Problem(marked_line(text), message)


def test_tag_of_200_characters_is_fine():
    assert load_desired(subscription("post.create", '{user_id: "1"}', "t" * 200)).activity[0].tag == "t" * 200


def test_duplicate_subscription_ignores_tag_key_order_and_quoting():
    text = doc("""\
        activity:
          - event_type: like.create
            filter: {user_id: "1", direction: inbound}
            tag: first
          - event_type: like.create   # <-
            filter: {direction: inbound, user_id: 1}
            tag: second
        """)

    found = [p for p in problems(text)]

    assert found == [Problem(marked_line(text), "duplicate subscription: like.create with filter "
                                                "{direction: inbound, user_id: 1} is already declared at line 4")]


def test_same_type_with_different_filters_is_not_a_duplicate():
    text = doc("""\
        activity:
          - event_type: like.create
            filter: {user_id: "1", direction: inbound}
          - event_type: like.create
            filter: {user_id: "1"}
        """)

    assert len(load_desired(text).activity) == 2


@pytest.mark.parametrize(("text", "message"), [
    (WEBHOOK + "acount_activity: []   # <-\n",
     "unknown key 'acount_activity' in the file (did you mean 'account_activity'?); expected: webhook, "
     "account_activity, activity, prune"),
    (WEBHOOK + "activity:\n  - event_type: post.create\n    filters: {user_id: '1'}   # <-\n",
     "unknown key 'filters' in an activity entry (did you mean 'filter'?); expected: event_type, filter, tag"),
    (WEBHOOK + "account_activity:\n  - userid: '1'   # <-\n",
     "unknown key 'userid' in an account_activity entry (did you mean 'user_id'?); expected: user_id"),
    (WEBHOOK + "account_activity:\n  - '4337869213'   # <-\n",
     "an account_activity entry must be a mapping with user_id; got the string '4337869213'"),
    (WEBHOOK + "activity: {event_type: post.create}   # <-\n", "activity must be a list; got a mapping"),
    (WEBHOOK + "prune: yes please   # <-\n", "prune must be true or false; got the string 'yes please'"),
    (WEBHOOK + "prune: false\nprune: true   # <-\n", "duplicate key 'prune' (first at line 3)"),
    (WEBHOOK + "activity:\n  - filter: {user_id: '1'}   # <-\n", "activity entry is missing 'event_type'"),
    ("- webhook   # <-\n", "the file must be a mapping with webhook, account_activity, activity, prune; got a list"),
    ("# nothing but a comment   # <-\n", "the file is empty; expected a mapping with webhook"),
    (WEBHOOK + "activity: [\n  {event_type: post.create   # <-\n",
     "invalid YAML: while parsing a flow mapping; expected ',' or '}', but got '<stream end>'"),
    (WEBHOOK + "activity: !!python/object:os.system x   # <-\n", "invalid value:"),
])
def test_structure_problems(text, message):
    found = only_problem(text)

    assert found.line == marked_line(text)
    assert message in found.message


def test_yaml_syntax_error_names_file_line_and_where_the_construct_started():
    text = "webhook:\n  url: https://example.com/webhook\nactivity: [\n  {event_type: post.create},\nprune: true\n"

    with pytest.raises(DesiredStateError) as caught:
        load_desired(text, "subs.yaml")

    assert str(caught.value) == ("subs.yaml:5: invalid YAML: while parsing a flow sequence (started at line 3); "
                                 "expected ',' or ']', but got '<stream end>'")


def test_anchors_and_merge_keys_are_resolved():
    text = doc("""\
        activity:
          - &likes
            event_type: like.create
            filter: {user_id: "1", direction: inbound}
          - <<: *likes
            filter: {user_id: "2", direction: inbound}
        """)

    assert [s.filter["user_id"] for s in load_desired(text).activity] == ["1", "2"]


# --- Models: identity, user context, JSON ----------------------------------------------------------


def test_key_is_event_type_and_filter_items_as_strings():
    a = XaaSubscriptionSpec(event_type="like.create", filter={"user_id": "1", "direction": "inbound"}, tag="a")
    b = XaaSubscriptionSpec(event_type="like.create", filter={"direction": "inbound", "user_id": "1"})

    assert a.key() == ("like.create", frozenset({("user_id", "1"), ("direction", "inbound")}))
    assert a.key() == b.key()  # tags are updated in place, not part of the identity
    assert a.key() != XaaSubscriptionSpec(event_type="like.create", filter={"user_id": "1"}).key()


def test_model_normalises_aliases_too():
    spec = XaaSubscriptionSpec(event_type="chat.conversation_join", filter={"user_id": "1"})

    assert spec.event_type == "chat.conversation.join"


def test_needs_user_context_for_private_but_not_public_events():
    assert needs_user_context("post.create") is False
    assert needs_user_context("profile.update.bio") is False
    assert needs_user_context("broadcast.start") is False
    assert needs_user_context("like.create") is True
    assert needs_user_context("dm.received") is True
    assert needs_user_context("post.mention.create") is True
    assert needs_user_context("chat.conversation_join") is True  # alias of a private type
    assert needs_user_context("something.new") is True  # unknown: asking for user context never fails

    state = load_desired(EXAMPLE)
    assert [s.needs_user_context for s in state.activity] == [False, True]


def test_json_round_trip():
    state = load_desired((DESIRED / "valid.yaml").read_text())

    stored = state.to_json()
    back = DesiredState.from_json(stored)

    assert back == state.model_copy(update={"warnings": []})  # warnings are about the file, not stored
    assert "warnings" not in json.loads(stored)
    assert [s.key() for s in back.activity] == [s.key() for s in state.activity]
    assert DesiredState.from_json(back.to_json()) == back


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["account_activity"].append({"user_id": 4337869213}), "Input should be a valid string"),
    (lambda d: d["account_activity"].append({"user_id": "x"}), "user_id 'x' is not a user id"),
    (lambda d: d["activity"].append(d["activity"][0]), "activity[2]: subscription repeats activity[0]"),
    (lambda d: d["activity"][0].update(event_type="post.created"), "unknown event_type 'post.created'"),
    (lambda d: d["activity"][0].update(event_type="oauth.revoke", filter={}), "cannot be subscribed to"),
    (lambda d: d["activity"][0]["filter"].update(direction="inbound"), "does not take filter key 'direction'"),
    (lambda d: d["webhook"].update(url="https://example.com:8443/"), "must not include a port"),
    (lambda d: d.update(extra=1), "Extra inputs are not permitted"),
])
def test_from_json_validates_like_the_file(change, message):
    data = json.loads(load_desired(EXAMPLE).to_json())
    change(data)

    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DesiredState.from_json(json.dumps(data))


def test_desired_imports_without_yaml_and_only_load_desired_needs_it():
    script = textwrap.dedent("""\
        import sys
        sys.modules["yaml"] = None  # as in the Lambda layer, which does not ship PyYAML
        from xrelay.subscriptions.desired import DesiredState, load_desired
        state = DesiredState.from_json('{"webhook": {"url": "https://example.com/webhook"}}')
        print(state.webhook.url)
        try:
            load_desired("webhook: {}")
        except ImportError as exc:
            print(exc)
        """)

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)

    assert result.stdout.splitlines() == [
        "https://example.com/webhook",
        "reading a desired-state file needs PyYAML (pip install pyyaml)",
    ]
