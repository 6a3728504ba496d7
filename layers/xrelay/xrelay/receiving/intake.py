"""Event intake: verify, parse, normalise, deduplicate, store. The core of IntakeFunction.

Order matters and is the security contract: the signature is checked on the raw bytes before
anything else is read or written. A delivery is answered 200 only once every event in it is
durable in the event store (the store's stream then fans it out to SQS), or once the raw
delivery is durable in quarantine; any AWS failure answers 5xx so that X retries, and retries
are harmless because every write is conditional on the event's natural key.

After the signature every path is total (issue 13): a delivery is stored, or kept raw in
quarantine and acknowledged, or refused with a 4xx; only AWS failing answers 5xx. A delivery's
events are written concurrently, and what cannot be written before the invocation runs out of
time is quarantined rather than timed out (``xrelay events reprocess`` stores it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from xrelay.config import Settings
from xrelay.credentials import SecretUnavailable, SigningSecrets
from xrelay.events.bounds import error_summary, loggable_fields, may_hold_surrogates, without_lone_surrogates
from xrelay.events.event_types import POST_DELETE
from xrelay.events.models import ControlMessage, EventRecord
from xrelay.events.normalize import UnrecognisedDelivery, deleted_post_id, delivery_id, normalize
from xrelay.observability import M, compact_lambda_context, count, count_with, make_tracer
from xrelay.receiving.apigw import Response, raw_body
from xrelay.receiving.signature import OAUTH2, SignatureRefused, Verified, verify_delivery
from xrelay.receiving.signing_log import DOCTOR_PROBE, SigningLog
from xrelay.recovery.outages import Ledger
from xrelay.storage.store import (
    EventStore,
    RecordTooLarge,
    RecordUnstorable,
    StateStore,
    StoreRefused,
    StoreUnavailable,
)

# One delivery's events are written on this many threads at once (boto3 clients are thread-safe;
# aws.py gives each client as many connections).
WRITE_THREADS = 16
# Kept back from the invocation's remaining time once writes stop: quarantining the rest, answering.
ANSWER_RESERVE_MS = 1500
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="intake-write")
        return _POOL


@dataclass
class _Written:
    new: int = 0
    duplicates: int = 0
    recovered: int = 0
    deferred: int = 0  # not attempted: the time budget ran out
    errors: list[str] = field(default_factory=list)

    def add(self, other: _Written) -> None:
        self.new, self.duplicates = self.new + other.new, self.duplicates + other.duplicates
        self.recovered, self.deferred = self.recovered + other.recovered, self.deferred + other.deferred
        self.errors += other.errors


class NestedTooDeep(Exception):
    """A signed body nested deeper than Python's JSON parser goes (a RecursionError)."""


@dataclass
class Intake:
    events: EventStore
    state: StateStore
    load_secrets: Callable[[], SigningSecrets]
    log: Any
    metrics: Any
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # The invocation's remaining milliseconds (Lambda's context.get_remaining_time_in_millis):
    # writes stop in time to answer. None: no deadline (reprocessing, tests).
    remaining_ms: Callable[[], int] | None = None
    signing_log: SigningLog | None = None  # which scheme X signs with, for `xrelay status` (state table)

    def __post_init__(self) -> None:
        if self.signing_log is None:
            self.signing_log = SigningLog(self.state.table, self.state.ddb)

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """One POST from X: ``headers`` must be lower-cased."""
        try:
            secrets = self.load_secrets()
        except SecretUnavailable as exc:
            count(self.metrics, M.SECRET_FAILURES)
            self.log.error("intake could not read the signing secrets", extra={"reason": str(exc)})
            return Response(503, {"error": "temporarily unavailable"})
        try:
            signed = verify_delivery(headers, body, secrets.client_secrets, secrets.consumer_secrets)
        except SignatureRefused as exc:
            count(self.metrics, M.SIGNATURES_REFUSED)
            self.log.warning("signature refused", extra={"status": exc.status, "reason": exc.reason,
                                                         "body_bytes": len(body)})
            return Response(exc.status, {"error": exc.reason})
        count(self.metrics, M.DELIVERIES_SIGNED_OAUTH2 if signed.scheme == OAUTH2 else M.DELIVERIES_SIGNED_LEGACY)
        if signed.previous:
            self.log.info(f"delivery signed with the {signed.secret} (rotation in progress)")

        try:
            doc, problem = parse_delivery(body)
        except NestedTooDeep as exc:  # signed, so kept: acknowledged, quarantined, alarmed
            return self.set_aside(body, str(exc))
        if problem:
            count(self.metrics, M.DELIVERIES_REJECTED)
            self.log.warning("delivery rejected", extra={"reason": problem, "body_bytes": len(body)})
            return Response(400, {"error": problem})
        response = self.ingest(doc, body)
        if response.status < 500 and doc != DOCTOR_PROBE:  # after the events are durable: the record must
            self._note_signature(signed)                    # never delay or fail them
        return response

    def ingest(self, doc: dict[str, Any], body: bytes, *, reprocessing: bool = False) -> Response:
        """Store what a verified delivery carries; used by :meth:`handle` and by reprocessing.

        Every outcome but an AWS failure is final: each event is stored (or a duplicate), or set
        aside with the raw delivery in quarantine (it cannot be normalised or stored, or it could
        not be written within the time budget), and the answer is 200. Only StoreUnavailable
        answers 503: a retry can succeed, and writes already made are duplicates then.
        """
        received = self.clock()
        deadline = None if reprocessing else self._deadline()
        delivery = delivery_id(body)
        self.log.set_correlation_id(delivery)
        if may_hold_surrogates(body):  # decided once, here: lone surrogates become U+FFFD (bounds.py)
            doc = without_lone_surrogates(doc)
        try:
            result = normalize(doc, delivery=delivery, received_at=received)
            errors = result.errors
        except UnrecognisedDelivery as exc:
            result, errors = None, [str(exc)]
        except Exception as exc:  # a bug of ours: keep the delivery, say what broke, never its content
            result, errors = None, [f"{type(exc).__name__} while normalising the delivery (xrelay bug?)"]
        records = result.events if result else []

        try:
            written = self._write_events(records, deadline)
            errors += written.errors
            if written.deferred:
                errors.append(f"{written.deferred} events not written within the time budget: kept for "
                              "`xrelay events reprocess`")
            for control in result.controls if result else []:
                try:
                    fresh = self.state.record_control(control)
                    if control.kind == "replay_job_status":
                        # Also on a duplicate: a retry after a ledger failure here must still update the job.
                        self._record_replay_job_status(control)
                except StoreRefused as exc:
                    errors.append(f"{control.kind} refused by the store: {exc}")
                    continue
                count_with(self.metrics, M.CONTROL_MESSAGES, 1, Kind=control.kind)
                self.log.info("control message recorded", extra=loggable_fields(
                    {"kind": control.kind, "duplicate": not fresh, **_safe_control_fields(control.body)}))
            if errors and not reprocessing:
                self.state.quarantine(delivery, body, "; ".join(errors), received)
                count(self.metrics, M.DELIVERIES_QUARANTINED)
                if written.deferred:
                    count(self.metrics, M.EVENTS_DEFERRED, written.deferred)
                self.log.error("delivery quarantined: kept raw for `xrelay events reprocess`",
                               extra=loggable_fields({"errors": errors, "events_stored": written.new}))
        except StoreUnavailable as exc:
            return self._store_unavailable(exc)

        received_by_type = Counter((r.source.value, r.event_type) for r in records)
        for (source, event_type), n in received_by_type.items():  # in the invocation's one EMF document
            count_with(self.metrics, M.EVENTS_RECEIVED, n, Source=source, EventType=event_type)
        unknown = [r for r in records if not r.known_type]
        if unknown:
            count(self.metrics, M.UNKNOWN_EVENT_TYPES, len(unknown))
            self.log.warning("unknown event types stored and forwarded", extra=loggable_fields(
                {"count": len(unknown), "event_types": sorted({r.event_type for r in unknown}),
                 "event_keys": [r.event_key for r in unknown]}))
        if written.new:
            count(self.metrics, M.EVENTS_STORED, written.new)
        if written.duplicates:
            count(self.metrics, M.DUPLICATES_DROPPED, written.duplicates)
        if written.recovered:
            count(self.metrics, M.EVENTS_RECOVERED_BY_REPLAY, written.recovered)
        # At INFO the invocation's one line is its EMF document (issue 16: log bytes were most of
        # intake's cost after the writes): EventsReceived, EventsStored and DuplicatesDropped are this
        # summary, and a quarantine has its own ERROR line. The delivery and its events, at DEBUG.
        if self.log.log_level <= logging.DEBUG:  # not even built at INFO
            self.log.debug("delivery accepted", extra=loggable_fields(
                {"events": len(records), "new": written.new, "duplicates": written.duplicates,
                 "quarantined": bool(errors), "event_keys": [r.event_key for r in records],
                 "event_types": sorted({r.event_type for r in records})}))
        body_out: dict[str, Any] = {"status": "accepted", "events": len(records), "new": written.new,
                                    "duplicates": written.duplicates}
        if errors:
            body_out["quarantined"] = True
            body_out |= error_summary(errors)
        return Response(200, body_out)

    def _note_signature(self, signed: Verified) -> None:
        """Record the scheme for `xrelay status` (throttled: see signing_log); never fails the delivery."""
        try:
            if self.signing_log is not None and self.signing_log.note(signed, self.clock()) and signed.unchecked:
                # Once per sandbox and 10 minutes, like the record: X signs in both schemes here.
                self.log.warning(f"X also sent {signed.unchecked}, which cannot be checked: the X app secret holds "
                                 "no client_secret; the legacy signature was checked instead")
        except Exception as exc:  # a missing record only makes `xrelay status` less precise
            self.log.warning("could not record the delivery's signing scheme", extra={"reason": type(exc).__name__})

    # ---------------------------------------------------------------- the events' writes, concurrently
    def _deadline(self) -> float | None:
        """When (time.monotonic) to stop starting writes: the invocation's remaining time, less what
        quarantining the rest and answering need."""
        if self.remaining_ms is None:
            return None
        return time.monotonic() + max(0, self.remaining_ms() - ANSWER_RESERVE_MS) / 1000

    def _write_events(self, records: list[EventRecord], deadline: float | None) -> _Written:
        """Write ``records``: one conditional PutItem each (the dedupe), on a thread pool.

        Records that must be written in order share a task: copies of one event (the same key; a
        second concurrent write would race the first on a store without atomic conditions, such as
        moto) and the deletions of one post (its tombstone is written once, before the events).
        """
        groups: dict[str, list[EventRecord]] = {}
        for record in records:
            deleted = deleted_post_id(record) if record.event_type == POST_DELETE else None
            groups.setdefault(f"post:{deleted}" if deleted else f"event:{record.event_key}", []).append(record)
        written = _Written()
        tasks = list(groups.values())
        if len(tasks) <= 1:
            outcomes = [self._write_group(group, deadline) for group in tasks]
        else:
            futures = [_pool().submit(self._write_group, group, deadline) for group in tasks]
            wait(futures)  # every write in flight finishes (each is bounded by the client's timeouts)
            failures = [f.exception() for f in futures if f.exception() is not None]
            if failures:
                raise failures[0]
            outcomes = [f.result() for f in futures]
        for outcome in outcomes:
            written.add(outcome)
        return written

    def _write_group(self, group: list[EventRecord], deadline: float | None) -> _Written:
        done = _Written()
        for record in group:
            if deadline is not None and time.monotonic() > deadline:
                done.deferred += 1
                continue
            try:
                if record.event_type == POST_DELETE:
                    # The post's tombstone, before the event and on every copy of it (compliance.py):
                    # a minimal first copy may not name the post, and a retry must still write it.
                    self.events.record_deletion(record, record.received_at)
                stored = self.events.put_new(record)
                if record.event_type == "oauth.revoke" and record.user_id:
                    # Also on a duplicate: a retry after a failure here must still record it.
                    self._record_revocation(record)
            except RecordTooLarge as exc:  # the same every time: set aside, never 5xx
                done.errors.append(f"event too large to store: {exc}")
                continue
            except (RecordUnstorable, StoreRefused) as exc:
                done.errors.append(f"event not stored: {exc}")
                continue
            except StoreUnavailable:
                raise
            except Exception as exc:  # a bug of ours: keep the delivery, say what broke, never its content
                done.errors.append(f"{type(exc).__name__} while storing an event (xrelay bug?)")
                continue
            if stored:
                done.new += 1
                done.recovered += record.replay  # first seen in a replay: the replay recovered it
            else:
                done.duplicates += 1
        return done

    def set_aside(self, body: bytes, reason: str) -> Response:
        """Keep a signed delivery raw in quarantine without reading it: 200, or 503 if the store failed."""
        delivery = delivery_id(body)
        self.log.set_correlation_id(delivery)
        try:
            self.state.quarantine(delivery, body, reason, self.clock())
        except StoreUnavailable as exc:
            return self._store_unavailable(exc)
        count(self.metrics, M.DELIVERIES_QUARANTINED)
        self.log.error("delivery quarantined: kept raw for `xrelay events reprocess`", extra={"reason": reason})
        return Response(200, {"status": "accepted", "events": 0, "new": 0, "duplicates": 0, "quarantined": True,
                              **error_summary([reason])})

    def _store_unavailable(self, exc: StoreUnavailable) -> Response:
        """The one 503 after the signature: DynamoDB failed, X's retry can succeed."""
        count(self.metrics, M.STORE_FAILURES)
        self.log.error("store unavailable; answering 503 so that X retries",
                       extra=loggable_fields({"reason": str(exc)}))
        return Response(503, {"error": "temporarily unavailable, retry"})

    def _record_replay_job_status(self, control: ControlMessage) -> None:
        """X finished a replay job: mark it in the outage ledger (the same state table).

        Idempotent and order-tolerant (see :meth:`Ledger.record_job_status`); a ledger failure
        raises StoreUnavailable, so the delivery is answered 503 and X redelivers it.
        """
        body = control.body
        job_id, state = body.get("job_id"), body.get("job_state")
        if not isinstance(job_id, str | int) or not str(job_id) or not isinstance(state, str) or not state \
                or len(str(job_id)) > 64:
            self.log.warning("replay_job_status without a usable job_id and job_state: ledger not updated",
                             extra=loggable_fields(_safe_control_fields(body)))
            return
        webhook_id = body.get("webhook_id")
        webhook_id = str(webhook_id) if isinstance(webhook_id, str | int) and len(str(webhook_id)) <= 64 else None
        description = body.get("job_state_description")
        changed = Ledger(self.state.table, self.state.ddb).record_job_status(
            str(job_id), state[:64], webhook_id=webhook_id,
            description=description if isinstance(description, str) else "", at=control.received_at)
        self.log.info("replay job status recorded in the outage ledger" if changed else
                      "replay job status already known (or older than what the ledger holds)",
                      extra=loggable_fields({"job_id": str(job_id), "job_state": state}))

    def _record_revocation(self, record: EventRecord) -> None:
        applied = self.state.record_revocation(record.user_id, record.occurred_at or record.received_at,
                                               record.event_key)
        if applied:
            count(self.metrics, M.USERS_REVOKED)
        self.log.info("user revoked the app" if applied else "revocation older than the user's re-authorisation",
                      extra=loggable_fields({"user_id": record.user_id, "event_key": record.event_key}))


def parse_delivery(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A verified body as a JSON object, or why not (intake, ``xrelay events reprocess``); raises NestedTooDeep."""
    if not body.strip():
        return None, "empty body: expected a JSON object"
    try:
        doc = json.loads(body)
    except RecursionError:
        raise NestedTooDeep("body is nested deeper than the JSON parser goes: kept raw, not read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"
    if not isinstance(doc, dict):
        return None, f"body must be a JSON object, got {type(doc).__name__}"
    return doc, None


def _safe_control_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body.get(k) for k in ("job_id", "job_state", "webhook_id") if k in body}


def lambda_handler(settings: Settings, load_secrets: Callable[[], SigningSecrets], log, metrics):
    """The Lambda handler of X's deliveries, for IntakeFunction and WebhookFunction's POST: the trigger's
    body and headers to :meth:`Intake.handle`, writes stopping in time to answer before the function's
    timeout (what is left is quarantined), one EMF document per delivery, traced when tracing is on.
    The handler carries its ``intake`` and ``tracer`` (None when tracing is off)."""
    intake = Intake(
        events=EventStore(settings.events_table, settings.retention_days, index_users=settings.index_users),
        state=StateStore(settings.state_table),
        load_secrets=load_secrets,
        log=log,
        metrics=metrics,
    )

    @metrics.log_metrics
    @compact_lambda_context(log, metrics)  # one line per delivery: its EMF document; more at DEBUG
    def handle(event, context):
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        timed = replace(intake, remaining_ms=context.get_remaining_time_in_millis)
        return timed.handle(raw_body(event), headers).to_proxy()

    tracer = make_tracer("intake")
    handler = tracer.capture_lambda_handler(handle) if tracer else handle
    handler.intake, handler.tracer = intake, tracer  # what it writes with and traces with, for inspection
    return handler
