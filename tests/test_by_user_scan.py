"""Issue 16: reading a user's events works with the ByUser index off (UserIndex=false, the
default): a Scan filtered on the unindexed ``uid`` (and on ``user_key``, for events stored while
the index was on), in the index's order, and the CLI says once what that costs and how to turn
the index on."""

from datetime import UTC, datetime, timedelta

from conftest import EACH_USER_INDEX, fixture_bytes, fixture_json, users_indexed
from helpers import post
from xrelay.aws import client
from xrelay.events.normalize import delivery_id, normalize
from xrelay.storage.store import EventStore
from xrelay.tools.cli.cli import main

AAA_USER = "2244994945"
XAA_USER = "1111111111111111111"
NOTICE = "the ByUser index is off (UserIndex=false)"


def events_table(stack) -> str:
    return stack.stack.physical("EventsTable")


@EACH_USER_INDEX
def test_events_list_by_user_lists_the_users_events_in_time_order_either_way(stack, capsys):
    for name in ("aaa/tweet_create_two.json", "xaa/01_post.create.json", "aaa/follow.json"):
        assert post(stack, fixture_bytes(name))[0] == 200
    capsys.readouterr()
    assert main(["events", "list", "--user", AAA_USER]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()[1:]
    assert len(rows) == 3 and all(" aaa " in row for row in rows)
    assert [row.split()[0] for row in rows] == sorted(row.split()[0] for row in rows)
    assert XAA_USER not in out
    assert err.count(NOTICE) == (0 if users_indexed(stack) else 1)
    if not users_indexed(stack):
        assert "UserIndex=true" in err and "Traceback" not in err


@EACH_USER_INDEX
def test_events_tail_by_user_says_once_that_it_scans(stack, capsys):
    name, now = "aaa/tweet_create.json", datetime.now(UTC)
    (record,) = normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=now).events
    record = record.model_copy(update={"occurred_at": now})  # within the index's look-back
    assert EventStore(events_table(stack), 30, index_users=users_indexed(stack)).put_new(record)
    assert main(["events", "tail", "--once", "--user", AAA_USER]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2  # the header and the event
    assert err.count(NOTICE) == (0 if users_indexed(stack) else 1)


@EACH_USER_INDEX
def test_without_the_index_a_scan_finds_events_stored_before_and_after_turning_it_off(stack):
    now = datetime.now(UTC)
    name = "aaa/tweet_create_two.json"
    first, second = normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=now).events
    table = events_table(stack)
    assert EventStore(table, 30, index_users=True).put_new(first)  # stored while the index was on
    assert EventStore(table, 30, index_users=False).put_new(second)  # and after it was turned off
    reader = EventStore(table, 30, index_users=users_indexed(stack))
    found = [r.event_key for r in reader.by_user(AAA_USER)]
    if users_indexed(stack):
        assert found == [first.event_key]  # the index holds only what was stored with it on
    else:
        assert sorted(found) == sorted([first.event_key, second.event_key])
        assert reader.by_user(AAA_USER, limit=1).__next__().event_key in found
        late = now + timedelta(days=3650)
        assert list(reader.by_user(AAA_USER, since=late)) == []


def test_the_scan_notice_names_the_table_size_when_it_can(stack):
    from xrelay.storage.store import scan_user_notice

    line = scan_user_notice(client("dynamodb"), events_table(stack))
    assert line.startswith(NOTICE) and " items, " in line and "UserIndex=true" in line

    class Denied:
        def describe_table(self, **_):
            raise PermissionError("AccessDenied")

    assert "UserIndex=true" in scan_user_notice(Denied(), events_table(stack))


@EACH_USER_INDEX
def test_by_user_yields_exactly_limit_events_with_the_index_or_the_scan(stack):
    """The limit is the number of events returned, with either reading (one past it was a survivor)."""
    table = events_table(stack)
    store = EventStore(table, 30, index_users=users_indexed(stack))
    now = datetime.now(UTC)
    stored = []
    for name in ("aaa/tweet_create_two.json", "aaa/follow.json"):
        for record in normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=now).events:
            assert store.put_new(record)
            stored.append(record.event_key)
    assert len(stored) == 3
    for limit in (1, 2, 3, 10):
        found = [r.event_key for r in store.by_user(AAA_USER, limit=limit)]
        assert len(found) == min(limit, 3) and set(found) <= set(stored), limit
