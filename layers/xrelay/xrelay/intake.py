"""Event intake: verify, parse, normalise, deduplicate, store. The core of IntakeFunction.

Order matters and is the security contract: the signature is checked on the raw bytes before
anything else is read or written. A delivery is answered 200 only once every event in it is
durable in the event store (the store's stream then fans it out to SQS), or once the raw
delivery is durable in quarantine; any AWS failure answers 5xx so that X retries, and retries
are harmless because every write is conditional on the event's natural key.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .apigw import Response
from .credentials import SecretUnavailable, SigningSecrets
from .event_types import POST_DELETE
from .models import ControlMessage, EventRecord
from .normalize import UnrecognisedDelivery, delivery_id, normalize
from .observability import M, count, count_by
from .outages import Ledger
from .signature import OAUTH2, SignatureRefused, Verified, verify_delivery
from .signing_log import DOCTOR_PROBE, SigningLog
from .store import EventStore, RecordTooLarge, StateStore, StoreUnavailable


@dataclass
class Intake:
    events: EventStore
    state: StateStore
    load_secrets: Callable[[], SigningSecrets]
    log: Any
    metrics: Any
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
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

        doc, problem = _parse_object(body)
        if problem:
            count(self.metrics, M.DELIVERIES_REJECTED)
            self.log.warning("delivery rejected", extra={"reason": problem, "body_bytes": len(body)})
            return Response(400, {"error": problem})
        response = self.ingest(doc, body)
        if response.status < 500 and doc != DOCTOR_PROBE:  # after the events are durable: the record must
            self._note_signature(signed)                    # never delay or fail them
        return response

    def ingest(self, doc: dict[str, Any], body: bytes, *, reprocessing: bool = False) -> Response:
        """Store what a verified delivery carries; used by :meth:`handle` and by reprocessing."""
        received = self.clock()
        delivery = delivery_id(body)
        self.log.set_correlation_id(delivery)
        try:
            result = normalize(doc, delivery=delivery, received_at=received)
            errors = result.errors
        except UnrecognisedDelivery as exc:
            result, errors = None, [str(exc)]

        new = duplicates = recovered = 0
        received_by_type: Counter[tuple[str, str]] = Counter()
        try:
            for record in result.events if result else []:
                received_by_type[record.source.value, record.event_type] += 1
                if not record.known_type:
                    count(self.metrics, M.UNKNOWN_EVENT_TYPES)
                    self.log.warning("unknown event type stored and forwarded",
                                     extra={"event_key": record.event_key, "event_type": record.event_type})
                if record.event_type == POST_DELETE:
                    # The post's tombstone, before the event and on every copy of it (compliance.py):
                    # a minimal first copy may not name the post, and a retry must still write it.
                    self.events.record_deletion(record, received)
                try:
                    stored = self.events.put_new(record)
                except RecordTooLarge as exc:
                    errors.append(f"event too large to store: {exc}")
                    continue
                if stored:
                    new += 1
                    recovered += record.replay  # first seen in a replay: the replay recovered it
                else:
                    duplicates += 1
                if record.event_type == "oauth.revoke" and record.user_id:
                    # Also on a duplicate: a retry after a failure here must still record it.
                    self._record_revocation(record)
                self.log.debug("event", extra={"event_key": record.event_key, "event_type": record.event_type,
                                               "duplicate": not stored, "replay": record.replay})
            for control in result.controls if result else []:
                fresh = self.state.record_control(control)
                if control.kind == "replay_job_status":
                    # Also on a duplicate: a retry after a ledger failure here must still update the job.
                    self._record_replay_job_status(control)
                count_by(M.CONTROL_MESSAGES, 1, Kind=control.kind)
                self.log.info("control message recorded", extra={"kind": control.kind, "duplicate": not fresh,
                                                                   **_safe_control_fields(control.body)})
            if errors and not reprocessing:
                self.state.quarantine(delivery, body, "; ".join(errors), received)
                count(self.metrics, M.DELIVERIES_QUARANTINED)
                self.log.error("delivery quarantined: kept raw for `xrelay events reprocess`",
                               extra={"errors": errors, "events_stored": new})
        except StoreUnavailable as exc:
            count(self.metrics, M.STORE_FAILURES)
            self.log.error("store unavailable; answering 503 so that X retries",
                           extra={"reason": str(exc), "events_stored_before_failure": new})
            return Response(503, {"error": "temporarily unavailable, retry"})

        for (source, event_type), n in received_by_type.items():  # one EMF blob per type, not per event
            count_by(M.EVENTS_RECEIVED, n, Source=source, EventType=event_type)
        if new:
            count(self.metrics, M.EVENTS_STORED, new)
        if duplicates:
            count(self.metrics, M.DUPLICATES_DROPPED, duplicates)
        if recovered:
            count(self.metrics, M.EVENTS_RECOVERED_BY_REPLAY, recovered)
        events = len(result.events) if result else 0
        self.log.info("delivery accepted", extra={"events": events, "new": new, "duplicates": duplicates,
                                                  "quarantined": bool(errors)})
        body_out: dict[str, Any] = {"status": "accepted", "events": events, "new": new, "duplicates": duplicates}
        if errors:
            body_out["quarantined"] = True
            body_out["errors"] = errors
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
                             extra=_safe_control_fields(body))
            return
        webhook_id = body.get("webhook_id")
        description = body.get("job_state_description")
        changed = Ledger(self.state.table, self.state.ddb).record_job_status(
            str(job_id), state, webhook_id=str(webhook_id) if isinstance(webhook_id, str | int) else None,
            description=description if isinstance(description, str) else "", at=control.received_at)
        self.log.info("replay job status recorded in the outage ledger" if changed else
                      "replay job status already known (or older than what the ledger holds)",
                      extra={"job_id": str(job_id), "job_state": state})

    def _record_revocation(self, record: EventRecord) -> None:
        applied = self.state.record_revocation(record.user_id, record.occurred_at or record.received_at,
                                               record.event_key)
        if applied:
            count(self.metrics, M.USERS_REVOKED)
        self.log.info("user revoked the app" if applied else "revocation older than the user's re-authorisation",
                      extra={"user_id": record.user_id, "event_key": record.event_key})


def _parse_object(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not body.strip():
        return None, "empty body: expected a JSON object"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"
    if not isinstance(doc, dict):
        return None, f"body must be a JSON object, got {type(doc).__name__}"
    return doc, None


def _safe_control_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body.get(k) for k in ("job_id", "job_state", "webhook_id") if k in body}
