"""The consumer library's copy of the record contract against the producer's (consumer/xrelay_consumer).

The library must not import xrelay (it installs without it), so it keeps its own copy of the
record, the message attributes and the compliance message. These tests fail when the producer's
models, committed schema or messages change and the copy was not changed with them.
"""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import xrelay_consumer
from xrelay_consumer import payloads, record

from conftest import ROOT, all_fixtures, fixture_bytes, fixture_json
from xrelay.events import event_types, models
from xrelay.events.normalize import UnrecognisedDelivery, delivery_id, normalize
from xrelay.publishing import compliance, publisher

SCHEMA = ROOT / "docs" / "event-record.schema.json"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_NOT_SHAPE = {"title", "description", "default", "required", "additionalProperties", "$schema", "$id"}


def shape(schema: Any) -> Any:
    """A JSON Schema without what the copy legitimately differs in: prose, defaults, strictness."""
    if isinstance(schema, dict):
        return {k: shape(v) for k, v in schema.items() if k not in _NOT_SHAPE}
    if isinstance(schema, list):
        return [shape(v) for v in schema]
    return schema


def test_the_library_does_not_import_xrelay():
    """Installable alone: no module of the package names xrelay's core package."""
    package = ROOT / "consumer" / "xrelay_consumer"
    for path in package.glob("*.py"):
        text = path.read_text()
        assert "import xrelay\n" not in text and "from xrelay " not in text and "from xrelay." not in text, path


def test_the_copy_of_the_record_has_the_committed_schema_shape():
    """Every field, type, nesting and enum of docs/event-record.schema.json, except schema_version's constant."""
    producer = json.loads(SCHEMA.read_text())
    copy = record.EventRecord.model_json_schema(mode="serialization")
    assert producer["properties"]["schema_version"]["const"] == record.SUPPORTED_SCHEMA_VERSION
    assert copy["properties"].pop("schema_version")["type"] == "integer"
    producer["properties"].pop("schema_version")
    assert shape(copy) == shape(producer)
    # Each nested model keeps every field the producer requires.
    for name, definition in producer["$defs"].items():
        if "properties" in definition:
            assert set(copy["$defs"][name]["properties"]) == set(definition["required"]), name


def test_versions_attributes_and_compliance_type_match_the_producer():
    assert record.SUPPORTED_SCHEMA_VERSION == models.SCHEMA_VERSION
    assert record.ATTRIBUTE_NAMES == publisher.ATTRIBUTE_NAMES
    assert record.POST_REDACTED == compliance.NOTICE_TYPE
    assert [s.value for s in record.Source] == [s.value for s in models.Source]
    assert [r.value for r in record.RedactionReason] == [r.value for r in models.RedactionReason]


def test_the_typed_payloads_name_types_the_producer_knows():
    assert payloads.XAA_POST_TYPES == event_types.XAA_POST_EVENT_TYPES
    assert set(payloads._XAA) <= event_types.XAA_EVENT_TYPES


def test_a_compliance_message_parses_into_every_field_of_the_typed_payload():
    """PostRedacted has exactly the keys deletion_notice writes (no key dropped, none missing)."""
    tombstone = compliance.Tombstone.from_item({
        "deleted_post": {"S": "2080761269309813134"}, "deleted_at": {"S": "2026-11-26T05:40:02.511Z"},
        "deleted_by": {"S": "xaa:post.delete:user_id=1:-27"}, "delivery_id": {"S": "d" * 64},
        "noted_at": {"S": "2026-11-26T05:40:02.600Z"}, "deleted_for": {"S": "1111111111111111111"}})
    notice = compliance.deletion_notice(tombstone, ["k2", "k1"])
    parsed = xrelay_consumer.EventRecord.model_validate_json(notice.model_dump_json())
    assert parsed.is_compliance
    assert set(payloads.PostRedacted.model_fields) == set(notice.event)
    assert parsed.payload == payloads.PostRedacted(
        post_id="2080761269309813134", deleted_at="2026-11-26T05:40:02.511Z",
        deletion_event_key="xaa:post.delete:user_id=1:-27", redacted_event_keys=["k1", "k2"],
        redacted_event_keys_total=2)


@pytest.mark.parametrize("name", all_fixtures())
def test_every_fixture_record_reads_the_same_in_the_copy(name):
    """Each record the producer makes from the fixtures dumps identically through the copy, pointer too,
    and its payload parses with the model the library picks."""
    try:
        records = normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=NOW).events
    except UnrecognisedDelivery:
        records = []
    if not records:
        pytest.skip("no event record: a control message or a quarantined shape")
    for produced in records:
        for message in (produced, produced.as_pointer("xrelay-EventsTable-EXAMPLE")):
            body = message.model_dump_json()
            copy = xrelay_consumer.EventRecord.model_validate_json(body)
            assert copy.model_dump(mode="json") == json.loads(body)
        full = xrelay_consumer.EventRecord.model_validate_json(produced.model_dump_json())
        assert isinstance(full.payload, payloads.payload_model(full))
