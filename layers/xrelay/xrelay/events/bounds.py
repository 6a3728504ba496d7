"""What X's data may make unbounded, bounded where it is read (docs/event-record.md, "What is kept").

A signed delivery is X's word, but its content is user text and whatever X's serialiser produced:

* **Lone surrogates.** JSON may escape half of a UTF-16 pair (``"\\ud83d"``, an emoji cut in half
  by a truncation). Python decodes it into a string UTF-8 cannot encode, so neither DynamoDB, SQS
  nor a log line could carry it. Each lone surrogate becomes U+FFFD (the replacement character)
  right after parsing, in keys and values alike: deterministic, so a redelivery gets the same
  event key and stays a duplicate.
* **Nesting.** An event nested deeper than :data:`MAX_NESTING` levels cannot be serialised
  (pydantic stops at 255, and a record adds its own levels): it is refused on its own (the
  delivery is kept raw in quarantine), never half-stored.
* **Identifiers and keys.** DynamoDB keys hold at most 2048 bytes (1024 in a sort key); an
  identifier longer than :data:`MAX_ID_CHARS` is not one of X's, and an event key built from
  long parts (a keyword filter) is cut and suffixed with a digest of the whole: still unique, still
  the same on every redelivery.
* **What we say back and log.** Answers carry a count and a few samples of errors; logged values
  are cut to :data:`MAX_LOG_CHARS` (CloudWatch keeps 256 KB per line).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

MAX_NESTING = 100
MAX_ID_CHARS = 128
MAX_KEY_BYTES = 1024
MAX_LOG_CHARS = 500
MAX_ERROR_SAMPLES = 5
MAX_ERROR_CHARS = 300

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a surrogate (a valid pair included): the only way one reaches a parsed string,
# since raw surrogates are not valid UTF-8 and json.loads refuses them.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def safe_text(value: str, limit: int | None = None) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD, cut to ``limit`` characters."""
    if limit is not None and len(value) > limit:
        value = value[:limit] + f"...[{len(value) - limit} more]"
    return _LONE_SURROGATE.sub("\ufffd", value)


def may_hold_surrogates(body: bytes) -> bool:
    return _SURROGATE_ESCAPE.search(body) is not None


def without_lone_surrogates(value: Any) -> Any:
    """A copy of parsed JSON ``value`` with lone surrogates replaced (keys too); iterative, so any depth."""
    if isinstance(value, str):
        return safe_text(value)
    if not isinstance(value, dict | list):
        return value
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (container, key, original)
    while pending:
        container, key, original = pending.pop()
        if isinstance(original, dict):
            copy: dict[str, Any] = {}
            container[key] = copy
            for name, item in original.items():
                name = safe_text(name)
                if isinstance(item, dict | list):
                    copy[name] = None
                    pending.append((copy, name, item))
                else:
                    copy[name] = safe_text(item) if isinstance(item, str) else item
        elif isinstance(original, list):
            copy_list: list[Any] = [None] * len(original)
            container[key] = copy_list
            for index, item in enumerate(original):
                if isinstance(item, dict | list):
                    pending.append((copy_list, index, item))
                else:
                    copy_list[index] = safe_text(item) if isinstance(item, str) else item
    return root[0]


def nesting(value: Any, stop_after: int = MAX_NESTING) -> int:
    """How many levels of objects and arrays ``value`` has (0 for a scalar); stops counting past ``stop_after``."""
    deepest = 0
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > stop_after:
            return deepest
        items = current.values() if isinstance(current, dict) else current
        pending.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return deepest


def bounded_key(key: str, limit: int = MAX_KEY_BYTES) -> str:
    """``key`` itself when it fits ``limit`` UTF-8 bytes, else its head and a digest of the whole."""
    raw = key.encode("utf-8")
    if len(raw) <= limit:
        return key
    digest = "~sha256-" + hashlib.sha256(raw).hexdigest()[:32]
    head = raw[:limit - len(digest)].decode("utf-8", "ignore")
    return head + digest


def error_summary(errors: list[str]) -> dict[str, Any]:
    """What an answer says about errors: how many, and a few of them, each cut short."""
    return {"error_count": len(errors),
            "errors": [safe_text(e, MAX_ERROR_CHARS) for e in errors[:MAX_ERROR_SAMPLES]]}


def loggable(value: Any, depth: int = 0) -> Any:
    """A log field's value, safe and bounded: strings cut and cleaned, lists and dicts short and shallow."""
    if isinstance(value, str):
        return safe_text(value, MAX_LOG_CHARS)
    if isinstance(value, list | tuple | dict) and depth >= 3:
        return f"[{type(value).__name__} of {len(value)}]"
    if isinstance(value, list | tuple):
        return [loggable(v, depth + 1) for v in value[:MAX_ERROR_SAMPLES]] + (
            [f"...[{len(value) - MAX_ERROR_SAMPLES} more]"] if len(value) > MAX_ERROR_SAMPLES else [])
    if isinstance(value, dict):
        return {safe_text(str(k), 100): loggable(v, depth + 1) for k, v in list(value.items())[:20]}
    return value


def loggable_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: loggable(value) for name, value in fields.items()}


class _Sized(Protocol):
    size: int


_S = TypeVar("_S", bound=_Sized)


def packed(items: Sequence[_S], max_count: int, max_bytes: int) -> list[list[_S]]:
    """``items`` in order, in batches of at most ``max_count`` items and ``max_bytes`` bytes (by each
    item's ``size``): what one SQS SendMessageBatch or one EventBridge PutEvents call accepts."""
    out: list[list[_S]] = []
    size = 0
    for item in items:
        if not out or len(out[-1]) == max_count or size + item.size > max_bytes:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item.size
    return out
