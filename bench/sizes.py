"""Bench section 4: Bytes and write units per event, for every event the fixtures produce: the item that
``store.event_item`` builds, sized with DynamoDB's rules (UTF-8 attribute names + values: S = UTF-8
length, N = ceil(significant digits / 2) + 1, B = raw length, BOOL = 1); WCU = ceil(size / 1 KB)
for the base table plus the ByUser GSI entry (keys + pk + event_type + source) when the item has
``user_key`` (under the template's default UserIndex/PurgeOnRevoke; the entry's size with the index
on is measured either way), plus 1 for the ByPost entry (pk + post_id) when it has ``post_id``.
The item's parts are reported apart: the compressed record, the plain attributes, their names. Ratios compare
stored bytes with the raw (compact JSON) delivery bytes each event came in, and the SQS message
(``publisher.outgoing``: body + attributes) with the same. A duplicate's failed conditional put is
billed for the item too (table only: no GSI write, no stream record).

Alone: ``.venv/bin/python bench/sizes.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    FIXED_NOW,
    RETENTION_DAYS,
    ROOT,
    fixture_name,
    fixture_paths,
    table,
    wire_body,
)


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute (name + value), for the types event items use."""
    (kind, inner), = value.items()
    if kind == "S":
        size = len(inner.encode("utf-8"))
    elif kind == "N":
        significant = inner.lstrip("-").replace(".", "").strip("0") or "0"
        size = math.ceil(len(significant) / 2) + 1
    elif kind == "B":
        size = len(inner)
    elif kind in ("BOOL", "NULL"):
        size = 1
    else:
        raise ValueError(f"no sizing rule here for DynamoDB type {kind}")
    return len(name.encode("utf-8")) + size


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(attribute_size(name, value) for name, value in item.items())


GSI_ATTRIBUTES = ("pk", "user_key", "ts", "event_type", "source")  # table key + index keys + INCLUDE projection
BY_POST_ATTRIBUTES = ("pk", "post_id")  # the ByPost entry of an event item (ref_of is on reference items only)


def default_index_users() -> bool:
    """Whether the template's defaults index events by user (Condition IndexUsers)."""
    from xrelay.storage.store import users_indexed
    from xrelay.tools.cli.template import load

    params = load(ROOT / "template.yaml")["Parameters"]
    return users_indexed({name: params[name]["Default"] for name in ("UserIndex", "PurgeOnRevoke")})


def measure_sizes() -> dict[str, Any]:
    from xrelay.events.normalize import UnrecognisedDelivery, delivery_id, normalize
    from xrelay.publishing.publisher import outgoing
    from xrelay.storage.store import event_item

    index_users = default_index_users()
    rows = []
    for path in fixture_paths():
        body = wire_body(path)
        try:
            result = normalize(json.loads(body), delivery=delivery_id(body), received_at=FIXED_NOW)
        except UnrecognisedDelivery:
            continue
        for record in result.events:
            item = event_item(record, RETENTION_DAYS, index_users)
            size = item_size(item)
            gsi = item_size({k: item[k] for k in GSI_ATTRIBUTES}) if "user_key" in item else 0
            indexed = event_item(record, RETENTION_DAYS, index_users=True)  # what ByUser would hold if on
            by_user_if_on = item_size({k: indexed[k] for k in GSI_ATTRIBUTES}) if "user_key" in indexed else 0
            by_post = item_size({k: item[k] for k in BY_POST_ATTRIBUTES}) if "post_id" in item else 0
            message = outgoing("1", record, "xrelay-EventsTable-BENCH")
            rows.append({
                "fixture": fixture_name(path),
                "event_type": record.event_type,
                "raw_bytes": len(body) / len(result.events),  # the delivery's wire bytes, shared by its events
                "record_json_bytes": len(record.model_dump_json().encode()),
                "record_blob_bytes": len(item["record"]["B"]),
                "plain_bytes": size - attribute_size("record", item["record"]),
                "name_bytes": sum(len(name) for name in item),
                "item_bytes": size,
                "gsi_bytes": gsi,
                "by_user_bytes_if_on": by_user_if_on,
                "by_post_bytes": by_post,
                "wcu": math.ceil(size / 1024) + (math.ceil(gsi / 1024) if gsi else 0) + (1 if by_post else 0),
                "duplicate_wcu": math.ceil(size / 1024),  # a failed conditional put still pays for the item
                "sqs_bytes": message.size,
                "sqs_body_bytes": len(message.body.encode()),
                "sqs_pointer": message.pointer,
            })

    def total(key: str) -> float:
        return sum(r[key] for r in rows)

    n = len(rows)
    return {
        "events": n,
        "index_users": index_users,
        "record_blob_bytes_mean": total("record_blob_bytes") / n,
        "plain_bytes_mean": total("plain_bytes") / n,
        "name_bytes_mean": total("name_bytes") / n,
        "with_gsi_entry": sum(1 for r in rows if r["gsi_bytes"]),
        "with_by_post_entry": sum(1 for r in rows if r["by_post_bytes"]),
        "item_bytes_mean": total("item_bytes") / n,
        "item_bytes_max": max(r["item_bytes"] for r in rows),
        "item_bytes_max_fixture": max(rows, key=lambda r: r["item_bytes"])["fixture"],
        "gsi_bytes_mean": total("gsi_bytes") / max(1, sum(1 for r in rows if r["gsi_bytes"])),
        # Storage is billed with 100 bytes of overhead per item and per index entry.
        "billed_storage_bytes_mean": (total("item_bytes") + total("gsi_bytes") + total("by_post_bytes") + 100 * n
                                      + 100 * sum(1 for r in rows if r["gsi_bytes"])
                                      + 100 * sum(1 for r in rows if r["by_post_bytes"])) / n,
        "items_over_1kb": sum(1 for r in rows if r["item_bytes"] > 1024),
        "wcu_mean": total("wcu") / n,
        "wcu_max": max(r["wcu"] for r in rows),
        "duplicate_wcu_mean": total("duplicate_wcu") / n,
        "raw_bytes_mean": total("raw_bytes") / n,
        "stored_to_raw": total("item_bytes") / total("raw_bytes"),
        "blob_to_record_json": total("record_blob_bytes") / total("record_json_bytes"),
        "sqs_bytes_mean": total("sqs_bytes") / n,
        "sqs_bytes_max": max(r["sqs_bytes"] for r in rows),
        "sqs_to_raw": total("sqs_bytes") / total("raw_bytes"),
        "sqs_pointers": sum(1 for r in rows if r["sqs_pointer"]),
        "per_event": rows,
    }


def render(results: dict[str, Any]) -> list[str]:
    """Section 4 of the report, from ``results["sizes"]``."""
    out: list[str] = []
    sizes = results["sizes"]
    out.append(f"4. Bytes and write units per event ({sizes['events']} fixture events, "
               f"{sizes['with_gsi_entry']} with a ByUser GSI entry (UserIndex "
               f"{'on' if sizes['index_users'] else 'off'} by default), {sizes['with_by_post_entry']} a ByPost one; "
               "DynamoDB sizing rules)")
    rows = [
        ["raw delivery bytes per event, compact JSON (mean)", f"{sizes['raw_bytes_mean']:.0f}"],
        ["stored item bytes (mean / max)",
         f"{sizes['item_bytes_mean']:.0f} / {sizes['item_bytes_max']} ({sizes['item_bytes_max_fixture']})"],
        ["  of which: compressed record / plain attributes (names alone)",
         f"{sizes['record_blob_bytes_mean']:.0f} / {sizes['plain_bytes_mean']:.0f} ({sizes['name_bytes_mean']:.0f})"],
        ["GSI entry bytes (mean, when present)", f"{sizes['gsi_bytes_mean']:.0f}"],
        ["billed storage bytes incl. 100 B/item overhead (mean)", f"{sizes['billed_storage_bytes_mean']:.0f}"],
        ["events whose item exceeds 1 KB (2+ WCU on the table)", f"{sizes['items_over_1kb']} of {sizes['events']}"],
        ["WCU per new event, table + GSIs (mean / max)", f"{sizes['wcu_mean']:.2f} / {sizes['wcu_max']}"],
        ["WCU per duplicate (failed conditional put; mean)", f"{sizes['duplicate_wcu_mean']:.2f}"],
        ["stored item bytes / raw bytes", f"{sizes['stored_to_raw']:.2f}"],
        ["zlib record blob / record JSON", f"{sizes['blob_to_record_json']:.2f}"],
        ["SQS message bytes, body + attributes (mean / max)",
         f"{sizes['sqs_bytes_mean']:.0f} / {sizes['sqs_bytes_max']}"],
        ["SQS message bytes / raw bytes", f"{sizes['sqs_to_raw']:.2f}"],
        ["events sent as pointers (too big for SQS)", sizes["sqs_pointers"]],
    ]
    out.append(table(["figure", "value"], rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()  # --help
    print("\n".join(render({"sizes": measure_sizes()})))


if __name__ == "__main__":
    main()
