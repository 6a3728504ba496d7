"""The consumers' contract: docs/event-record.md and docs/event-record.schema.json against the code.

A model change without a regenerated schema, a field or message attribute left out of the doc, or
a documented key or example message the code no longer produces fails here.
"""

import json
import re
from datetime import UTC, datetime
from functools import cache

import pytest
from jsonschema import Draft202012Validator

from conftest import ROOT, all_fixtures, fixture_bytes, fixture_json
from helpers import post, receive_all
from xrelay.events import models
from xrelay.events.event_types import AAA_EVENT_ARRAYS, XAA_EVENT_TYPES
from xrelay.events.models import EventRecord, Redaction, Source, StoredPointer, Subscription
from xrelay.events.normalize import UnrecognisedDelivery, delivery_id, normalize
from xrelay.publishing.publisher import ATTRIBUTE_NAMES, SQS_MAX_BYTES, decode_message, message_attributes, outgoing
from xrelay.tools.cli import cli

DOC = ROOT / "docs" / "event-record.md"
SCHEMA = ROOT / "docs" / "event-record.schema.json"
REGENERATE = ".venv/bin/xrelay schema > docs/event-record.schema.json"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# Deliveries that are no event: control messages, and shapes that are quarantined.
NO_RECORDS = {"other/replay_job_status_complete.json", "other/replay_job_status_incomplete.json",
              "other/unrecognised_shape.json", "other/xaa_missing_uuid.json"}
EXAMPLE_FIXTURE = "xaa/00_post.create.json"  # the doc's example message


@cache
def doc() -> str:
    return DOC.read_text()


def section(heading: str) -> str:
    """The doc's text under ``heading`` (a whole heading line), up to the next heading of any level."""
    text = doc()
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#{1,6} ", text[start:], re.M)
    return text[start:start + following.start()] if following else text[start:]


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell is one backticked name: name -> the other cells."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([^`]+)` \|(.*)\|$", line)
        if match:
            rows[match[1]] = [cell.strip() for cell in match[2].split("|")]
    return rows


def example(kind: str) -> str:
    """The code block that follows ``<!-- contract-example: kind -->`` in the doc."""
    match = re.search(rf"<!-- contract-example: {kind} -->\n```\w*\n(.*?)\n```", doc(), re.S)
    assert match, f"docs/event-record.md lost its '{kind}' example"
    return match[1]


def records(name: str) -> list[EventRecord]:
    try:
        result = normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=NOW)
    except UnrecognisedDelivery:
        return []
    return result.events


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(record: EventRecord) -> list[str]:
    """What a consumer validating the wire JSON against the committed schema would object to."""
    wire = json.loads(record.model_dump_json())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<record>'}: {e.message}" for e in validator().iter_errors(wire)]


# --------------------------------------------------------------------------- the committed schema


def test_committed_schema_is_the_models_current_export():
    assert SCHEMA.is_file(), f"docs/event-record.schema.json is missing: run `{REGENERATE}`"
    assert SCHEMA.read_text() == json.dumps(models.json_schema(), indent=2) + "\n", (
        f"docs/event-record.schema.json is out of date with models.py: run `{REGENERATE}`, and bump "
        "SCHEMA_VERSION if the record's shape changed (docs/event-record.md, 'schema_version and compatibility')")


def test_the_documented_command_writes_exactly_the_committed_schema(capsys):
    assert cli.main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA.read_text()


def test_schema_is_closed_as_the_compatibility_section_says():
    record = records("aaa/favorite.json")[0]
    assert schema_errors(record) == []
    wire = json.loads(record.model_dump_json())
    assert not validator().is_valid(wire | {"a_field_of_a_later_version": 1})
    assert not validator().is_valid(wire | {"schema_version": models.SCHEMA_VERSION + 1})
    assert not validator().is_valid(wire | {"source": "sms"})
    del wire["event_key"]
    assert not validator().is_valid(wire)


# --------------------------------------------------------------------------- the doc covers the model and the queue


@pytest.mark.parametrize("model", [EventRecord, Subscription, Redaction, StoredPointer], ids=lambda m: m.__name__)
def test_every_field_has_a_row_in_its_models_table(model):
    documented = table_rows(section(f"### {model.__name__}"))
    assert set(documented) == set(model.model_fields), (
        f"docs/event-record.md, table '### {model.__name__}': document "
        f"{sorted(set(model.model_fields) - set(documented))}, remove {sorted(set(documented) - set(model.model_fields))}")
    for name, cells in documented.items():
        assert len(cells) == 3 and all(cells), f"{model.__name__}.{name}: give its type, when it is null, an example"


def test_every_message_attribute_is_documented_with_its_data_type():
    produced: dict[str, str] = {}
    for name in all_fixtures():
        for record in records(name):
            produced |= {k: v["DataType"] for k, v in message_attributes(record).items()}
    assert set(produced) == set(ATTRIBUTE_NAMES)  # the fixtures exercise every attribute
    documented = table_rows(section("## The SQS message"))
    assert set(documented) == set(produced)
    for attribute, data_type in produced.items():
        assert documented[attribute][0] == f"`{data_type}`", attribute


def test_the_event_type_vocabulary_is_documented():
    names = set(re.findall(r"`([^`]+)`", section("### X Activity API (`source: xaa`)")))
    assert XAA_EVENT_TYPES <= names, sorted(XAA_EVENT_TYPES - names)
    aaa = section("### Account Activity API (`source: aaa`)")
    assert [array for array in AAA_EVENT_ARRAYS if f"`{array}`" not in aaa] == []


# --------------------------------------------------------------------------- every record fits the schema and the doc


def test_the_fixtures_without_records_are_the_known_ones():
    assert {name for name in all_fixtures() if not records(name)} == NO_RECORDS


@pytest.mark.parametrize("name", sorted(set(all_fixtures()) - NO_RECORDS))
def test_records_from_every_fixture_validate_against_the_committed_schema(name):
    produced = records(name)
    assert produced
    for record in produced:
        assert schema_errors(record) == [], record.event_key
        # Every field is on the wire, null included (the doc says so; the schema cannot).
        assert set(json.loads(record.model_dump_json())) == set(EventRecord.model_fields)


@pytest.mark.parametrize("name", sorted(set(all_fixtures()) - NO_RECORDS))
def test_nulls_are_where_the_doc_says(name):
    for record in records(name):
        sub = record.subscription
        assert record.event is not None and record.stored is None
        assert (record.context is None) == (record.source is not Source.AAA)
        assert (sub.filter is not None) == (record.source is Source.XAA)
        assert (sub.matching_rules is not None) == (record.source is Source.STREAM)
        assert sub.for_user_id is None or record.source is Source.AAA
        assert sub.tag is None or record.source is Source.XAA
        if record.source is not Source.XAA:
            assert sub.for_user_id == record.user_id


@pytest.mark.parametrize("name", ["aaa/direct_message.json", "xaa/07_like.create.json", "other/filtered_stream.json"])
def test_a_pointer_message_validates_against_the_committed_schema(name):
    record = records(name)[0]
    pointer = record.as_pointer("xrelay-EventsTable-EXAMPLE")
    assert schema_errors(pointer) == []
    assert (pointer.event, pointer.context, pointer.stored.key) == (None, None, {"pk": record.event_key})


def test_an_oversize_record_goes_out_as_a_pointer_that_validates():
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["payload"]["text"] = "x" * SQS_MAX_BYTES
    record = normalize(doc, delivery="d" * 64, received_at=NOW).events[0]
    message = outgoing("1", record, "xrelay-EventsTable-EXAMPLE")
    assert message.pointer and message.size < SQS_MAX_BYTES
    assert message.attributes == message_attributes(record)
    sent = decode_message(message.body)
    assert schema_errors(sent) == []
    assert sent == record.as_pointer("xrelay-EventsTable-EXAMPLE")


# --------------------------------------------------------------------------- the doc's examples are real


def test_documented_example_keys_are_what_normalize_produces():
    examples = re.findall(r"^\| `(\w+/[\w.]+\.json)` \| `([^`]+)` \|$", section("## Event keys"), re.M)
    assert len(examples) >= 10
    for name, key in examples:
        assert key in [r.event_key for r in records(name)], f"{name}: the doc's key {key!r} is not produced"


def test_key_examples_cover_every_key_shape_the_fixtures_produce():
    def shape(key: str) -> str:
        parts = key.split(":")
        return f"aaa:{parts[2]}" if parts[0] == "aaa" else parts[0]

    documented = {shape(key) for key in re.findall(r"^\| `\w+/[\w.]+\.json` \| `([^`]+)` \|$", doc(), re.M)}
    produced = {shape(r.event_key) for name in all_fixtures() for r in records(name)}
    assert produced <= documented, f"add an example key for {sorted(produced - documented)}"


def test_the_example_message_is_what_xrelay_produces_for_its_fixture():
    body, attributes = example("body"), json.loads(example("attributes"))
    shown = decode_message(body)
    assert shown.delivery_id == delivery_id(fixture_bytes(EXAMPLE_FIXTURE))
    # Normalised again with the example's own receive time, the fixture gives the very same bytes.
    expected = normalize(fixture_json(EXAMPLE_FIXTURE), delivery=shown.delivery_id,
                         received_at=shown.received_at).events[0]
    assert body == expected.model_dump_json()
    assert attributes == message_attributes(expected)
    pointer = example("pointer")
    assert pointer == expected.as_pointer(json.loads(pointer)["stored"]["table"]).model_dump_json()


def test_the_documented_fetch_recipe_returns_the_full_record_of_a_pointer_message(stack):
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["payload"]["text"] = "x" * SQS_MAX_BYTES
    body = json.dumps(doc).encode()
    assert post(stack, body)[1]["new"] == 1
    stack.drain()
    (message,) = receive_all(stack)
    assert json.loads(message["Body"])["stored"] is not None
    namespace: dict = {}
    exec(example("fetch"), namespace)
    full = namespace["full_record"](message["Body"])
    assert full["event"] == doc["data"] and full["stored"] is None
    stored = EventRecord.model_validate(full)
    assert schema_errors(stored) == []
    assert stored.as_pointer(stack.stack.physical("EventsTable")) == decode_message(message["Body"])
