"""Issue 16: the event item is small (write units are billed per 1 KB): the record is zlib with a
preset dictionary, the plain attributes are only those something reads, and records written
before (plain zlib) or with an older dictionary still decode."""

import importlib.util
import json
import math
import zlib
from datetime import UTC, datetime

import pytest

from conftest import FIXTURES, ROOT, fixture_bytes, fixture_json
from xrelay.events.normalize import UnrecognisedDelivery, delivery_id, normalize
from xrelay.publishing.publisher import SQS_MAX_BYTES, decode_image
from xrelay.storage import record_dictionary
from xrelay.storage.store import (
    DICTIONARY_MAX_BYTES,
    UNINDEXED_USER,
    compress_record,
    decode_record,
    decompress_record,
    encode_record,
    event_item,
    users_indexed,
)

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
FDICT = 0x20  # zlib header, second byte: a preset dictionary's Adler-32 follows


def fixture_records():
    out = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        body = path.read_bytes()
        try:
            out += normalize(json.loads(body), delivery=delivery_id(body), received_at=RECEIVED).events
        except (UnrecognisedDelivery, ValueError):
            continue
    return out


def one_record(name="xaa/07_like.create.json"):
    return normalize(fixture_json(name), delivery=delivery_id(fixture_bytes(name)), received_at=RECEIVED).events[0]


def test_every_fixture_record_round_trips_losslessly_with_the_current_dictionary():
    records = fixture_records()
    assert len(records) > 40
    for record in records:
        blob = encode_record(record)
        assert blob[1] & FDICT and int.from_bytes(blob[2:6], "big") == zlib.adler32(record_dictionary.CURRENT)
        assert decode_record(blob) == record
        assert decode_record(blob).event == record.event  # the raw payload, exactly


def test_a_record_written_before_the_dictionary_still_decodes():
    record = one_record()
    old = zlib.compress(record.model_dump_json().encode(), 6)  # what encode_record wrote until issue 16
    assert not old[1] & FDICT
    assert decode_record(old) == record
    assert decode_image({"record": {"B": old}}) == record  # the publisher reads stream images the same way


def test_a_record_of_an_older_dictionary_decodes_with_that_one(monkeypatch):
    record = one_record()
    older = b'"an older dictionary":' + record_dictionary.V1[:500]
    packer = zlib.compressobj(9, zdict=older)
    blob = packer.compress(record.model_dump_json().encode()) + packer.flush()
    with pytest.raises(ValueError, match="unknown preset dictionary"):
        decode_record(blob)  # never guessed: a record names its dictionary
    monkeypatch.setitem(record_dictionary.DICTIONARIES, zlib.adler32(older), older)
    assert decode_record(blob) == record


def test_the_dictionary_pays_for_itself_on_the_fixture_records():
    records = fixture_records()
    plain = sum(len(zlib.compress(r.model_dump_json().encode(), 6)) for r in records)
    with_dictionary = sum(len(encode_record(r)) for r in records)
    assert with_dictionary < 0.7 * plain


def test_published_dictionaries_are_frozen():
    # Records name their dictionary by Adler-32 only: changing V1's bytes would make every record
    # written with it undecodable. Add a V2 instead (record_dictionary's docstring).
    assert zlib.adler32(record_dictionary.V1) == 0xF6E88EAA
    assert record_dictionary.DICTIONARIES == {zlib.adler32(d): d for d in record_dictionary.DICTIONARIES.values()}
    assert len(record_dictionary.CURRENT) <= 32 * 1024  # deflate's window: more would never be reached


def test_a_large_record_is_plain_zlib_so_a_pointer_reader_decodes_it():
    # The consumer package resolves pointer messages with plain zlib.decompress; only records too
    # large for a message become pointers, and those never use the dictionary.
    assert DICTIONARY_MAX_BYTES < SQS_MAX_BYTES // 2
    large = json.dumps({"text": "x" * (DICTIONARY_MAX_BYTES + 1)}).encode()
    assert zlib.decompress(compress_record(large)) == large
    small = b'{"text":"hello"}'
    assert decompress_record(compress_record(small)) == small


@pytest.mark.parametrize("index_users", [True, False], ids=["UserIndex-true", "UserIndex-false"])
def test_the_item_keeps_only_attributes_something_reads(index_users):
    record = one_record("xaa/01_post.create.json")
    item = event_item(record, 30, index_users=index_users)
    user = {"user_key", "ts"} if index_users else {UNINDEXED_USER}
    assert set(item) == {"pk", "event_type", "source", "received_at", "expires_at", "record", "post_id", *user}
    assert item.get("user_key", item.get(UNINDEXED_USER))["S"] == record.user_id


def test_an_event_without_a_user_has_no_user_attribute_either_way():
    record = one_record("other/filtered_stream.json")
    assert record.user_id is None
    for index_users in (True, False):
        assert not {"user_key", "ts", UNINDEXED_USER} & set(event_item(record, 30, index_users=index_users))


def test_the_mean_fixture_event_fits_about_one_write_unit_on_the_table(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # bench/sizes.py (section 4) imports bench/common.py
    spec = importlib.util.spec_from_file_location("bench_sizes", ROOT / "bench" / "sizes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # DynamoDB's sizing rules, as `make bench` applies them
    units = [math.ceil(bench.item_size(event_item(r, 30, index_users=False)) / 1024) for r in fixture_records()]
    assert sum(units) / len(units) <= 1.1


@pytest.mark.parametrize(("parameters", "indexed"), [
    ({}, True),  # a stack deployed before UserIndex existed indexed every event
    ({"UserIndex": "false", "PurgeOnRevoke": "false"}, False),
    ({"UserIndex": "true", "PurgeOnRevoke": "false"}, True),
    ({"UserIndex": "false", "PurgeOnRevoke": "true"}, True),
])
def test_users_indexed_follows_the_template_condition(parameters, indexed):
    assert users_indexed(parameters) is indexed


def test_the_events_table_doc_lists_exactly_the_attributes_an_event_item_has():
    doc = (ROOT / "docs" / "event-record.md").read_text()
    section = doc[doc.index("## The events table"):]
    table = section[section.index("| Attribute | Type | Content |"):]
    table = table[:table.index("\n\n")]
    documented = {name for row in table.splitlines()[2:] for name in row.split("|")[1].replace("`", "").split(",")}
    documented = {name.strip() for name in documented}
    produced = {"redacted_at", "redaction_reason", "redacted_by"}  # compliance.py's, once redacted
    for record in fixture_records():
        for index_users in (True, False):
            produced |= set(event_item(record, 30, index_users=index_users))
    assert documented == produced
