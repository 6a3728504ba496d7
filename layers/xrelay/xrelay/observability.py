"""Logger, metrics and (optional) tracer shared by the functions.

Metric names are part of the operator's contract (README "Metrics"). Tracing is off unless the
template's EnableTracing Parameter turns it on: Powertools' Tracer costs about 200 ms of cold
start and needs aws-xray-sdk, which matters on the CRC path.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "xrelay")


class M:
    """Metric names, one place."""

    CRC_ANSWERED = "CrcAnswered"
    CRC_REFUSED = "CrcRefused"
    SIGNATURES_REFUSED = "SignaturesRefused"
    # Verified deliveries by scheme (which secret X signs with). Two names in the invocation's EMF
    # blob rather than a Scheme dimension: a dimension needs a blob of its own, about 10x the CPU.
    DELIVERIES_SIGNED_OAUTH2 = "DeliveriesSignedOAuth2"
    DELIVERIES_SIGNED_LEGACY = "DeliveriesSignedLegacy"
    DELIVERIES_REJECTED = "DeliveriesRejected"
    DELIVERIES_QUARANTINED = "DeliveriesQuarantined"
    EVENTS_RECEIVED = "EventsReceived"
    EVENTS_STORED = "EventsStored"
    DUPLICATES_DROPPED = "DuplicatesDropped"
    UNKNOWN_EVENT_TYPES = "UnknownEventTypes"
    CONTROL_MESSAGES = "ControlMessages"
    STORE_FAILURES = "StoreFailures"
    SECRET_FAILURES = "SecretFailures"
    EVENTS_PUBLISHED = "EventsPublished"
    OVERSIZE_POINTERS = "OversizeEventsAsPointers"
    FANOUT_FAILURES = "FanoutFailures"
    USERS_REVOKED = "UsersRevoked"
    # compliance (publisher): deletions and revocations applied to the store
    POSTS_REDACTED = "PostsRedacted"
    COPIES_REDACTED = "CopiesRedacted"
    COMPLIANCE_MESSAGES_SENT = "ComplianceMessagesSent"
    USER_EVENTS_PURGED = "UserEventsPurged"
    # the reconcile (X's side against the declared desired state)
    SUBSCRIPTIONS_DESIRED = "SubscriptionsDesired"
    SUBSCRIPTIONS_ACTUAL = "SubscriptionsActual"
    SUBSCRIPTIONS_CREATED = "SubscriptionsCreated"
    SUBSCRIPTIONS_UPDATED = "SubscriptionsUpdated"
    SUBSCRIPTIONS_DELETED = "SubscriptionsDeleted"
    DRIFT = "Drift"
    WEBHOOK_VALID = "WebhookValid"
    USERS_NEEDING_AUTHORIZATION = "UsersNeedingAuthorization"
    REVOKED_USERS_SKIPPED = "RevokedUsersSkipped"
    X_API_ERRORS = "XApiErrors"
    X_API_RATE_LIMITED = "XApiRateLimited"
    RECONCILE_FAILED = "ReconcileFailed"
    # the replay (outage ledger -> X's replay jobs)
    OUTAGES_OPENED = "OutagesOpened"
    OUTAGE_MINUTES_UNRECOVERED = "OutageMinutesUnrecovered"
    OUTAGE_MINUTES_LOST = "OutageMinutesLost"
    REPLAY_JOBS_STARTED = "ReplayJobsStarted"
    REPLAY_JOBS_COMPLETED = "ReplayJobsCompleted"
    REPLAY_JOBS_INCOMPLETE = "ReplayJobsIncomplete"
    REPLAY_JOBS_TIMED_OUT = "ReplayJobsTimedOut"
    REPLAY_JOBS_RESUBMITTED = "ReplayJobsResubmitted"
    REPLAY_FAILED = "ReplayFailed"
    # intake: new events that arrived marked meta.replay (X marks XAA replays; AAA's are unmarked)
    EVENTS_RECOVERED_BY_REPLAY = "EventsRecoveredByReplay"
    # set aside rather than retried forever (issue 13): intake's events not written within the
    # invocation's time budget (their delivery is quarantined), the publisher's records that can
    # never be published (sent to the PublishFailuresQueue)
    EVENTS_DEFERRED = "EventsDeferred"
    EVENTS_SET_ASIDE = "EventsSetAside"
    # the EventBridge bus (EventBusMode also/only, issue 17): entries put on it, and stream records
    # failed because it did not take one (Lambda retries from there; alarmed: EventBusFailuresAlarm)
    EVENTS_PUBLISHED_TO_BUS = "EventsPublishedToBus"
    EVENT_BUS_FAILURES = "EventBusFailures"


def make_logger(service: str) -> Logger:
    """Powertools' Logger at the LogLevel Parameter's level (POWERTOOLS_LOG_LEVEL).

    Powertools takes Lambda's ApplicationLogLevel (AWS_LAMBDA_LOG_LEVEL) over its own setting. The
    template sets that to INFO whatever LogLevel says (DEBUG with DEBUG) only so that Lambda's
    filter lets the EMF documents through (a line without a "level" counts as INFO): it must not
    turn LogLevel=WARNING back into INFO."""
    logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))
    level = (os.environ.get("POWERTOOLS_LOG_LEVEL") or "").upper()
    if level and os.environ.get("AWS_LAMBDA_LOG_LEVEL") and isinstance(logging.getLevelName(level), int):
        logger.initial_log_level = level  # what Powertools restores when it samples a debug invocation
        logging.getLogger(logger.name).setLevel(level)
    return logger


class _OneDocument(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider, flushing an invocation's metrics as one document: counts with
    dimensions of their own (:func:`count_with`) become extra directives of the invocation's
    document rather than a ``single_metric`` blob each (same names and dimensions; about half the
    log bytes and a fraction of the CPU). A second document only when two counts need different
    values of one dimension (an AAA delivery of two event types)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dimensioned: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def add_dimensioned(self, name: str, value: float, dimensions: dict[str, str]) -> None:
        key = (name, tuple(dimensions.items()))
        self.dimensioned[key] = self.dimensioned.get(key, 0) + value

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self.metric_set and not self.dimensioned:
            super().flush_metrics(raise_on_empty_metrics)  # Powertools' warning (or error) when empty
            return
        if is_metrics_disabled():
            self.dimensioned.clear()
            return
        docs = [self.serialize_metric_set()] if self.metric_set else []
        metadata = {} if docs else dict(self.metadata_set)  # else in the first document below
        base = {**self.default_dimensions, **self.dimension_set}  # Stage, service
        if self.service and "service" not in base:
            base["service"] = self.service
        for (name, extra), value in self.dimensioned.items():
            dims = dict(extra)
            doc = next((d for d in docs if name not in d and all(d.get(k, v) == v for k, v in dims.items())), None)
            if doc is None:
                doc = {"_aws": {"Timestamp": int(datetime.now().timestamp() * 1000), "CloudWatchMetrics": []},
                       **base, **metadata}
                docs.append(doc)
                metadata = {}
            keys = [k for k in base if k != "service"] + list(dims) + (["service"] if "service" in base else [])
            doc["_aws"]["CloudWatchMetrics"].append({"Namespace": self.namespace, "Dimensions": [keys],
                                                     "Metrics": [{"Name": name, "Unit": MetricUnit.Count.value}]})
            doc.update(dims)
            doc[name] = [float(value)]
        for doc in docs:
            for directive in doc["_aws"]["CloudWatchMetrics"]:  # one value: a number, as EMF allows (4 B each)
                for metric in directive["Metrics"]:
                    value = doc.get(metric["Name"])
                    if isinstance(value, list) and len(value) == 1:
                        doc[metric["Name"]] = int(value[0]) if float(value[0]).is_integer() else value[0]
            print(json.dumps(doc, separators=(",", ":")))
        self.clear_metrics()
        self.dimensioned.clear()


def compact_lambda_context(logger: Logger, metrics: Metrics | None = None):
    """A handler decorator: each line carries the request id only (``request_id``), not Powertools'
    six Lambda-context fields (the log group names the function, the memory size and cold starts are
    Lambda's to report): about half of intake's log bytes. With ``metrics``, the invocation's EMF
    document carries the request id too, so that document can be the invocation's one line at INFO.
    At DEBUG, Powertools' ``inject_lambda_context`` as before."""

    def decorate(handler):
        full = logger.inject_lambda_context(handler, clear_state=True)

        @functools.wraps(handler)
        def compact(event, context, *args, **kwargs):
            request_id = getattr(context, "aws_request_id", None)
            if metrics is not None and request_id:
                metrics.add_metadata("request_id", request_id)
            if logger.log_level <= logging.DEBUG:
                return full(event, context, *args, **kwargs)
            logger.clear_state()
            logger.append_keys(request_id=request_id)
            return handler(event, context, *args, **kwargs)

        return compact

    return decorate


def make_metrics(service: str) -> Metrics:
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", service)
    # The dicts Metrics shares between its instances (Powertools' design), handed to our provider.
    provider = _OneDocument(namespace=NAMESPACE, service=service, metric_set=Metrics._metrics,
                            dimension_set=Metrics._dimensions, metadata_set=Metrics._metadata,
                            default_dimensions=Metrics._default_dimensions)
    metrics = Metrics(namespace=NAMESPACE, service=service, provider=provider)
    stage = os.environ.get("STAGE")
    if stage:
        metrics.set_default_dimensions(Stage=stage)
    return metrics


def make_tracer(service: str) -> Any | None:
    """A Powertools Tracer when tracing is enabled, else None (and no aws-xray-sdk import)."""
    if os.environ.get("XRELAY_TRACING", "false").lower() != "true":
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=service)


def count(metrics: Metrics, name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, value: float, **dimensions: str) -> None:
    """A count with its own dimensions (e.g. per source and event type), flushed at once."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        stage = os.environ.get("STAGE")
        if stage:
            metric.add_dimension(name="Stage", value=stage)
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def count_with(metrics: Metrics, name: str, value: float, **dimensions: str) -> None:
    """A count with dimensions of its own, in the invocation's one EMF document (see _OneDocument)."""
    provider = getattr(metrics, "provider", None)
    if isinstance(provider, _OneDocument):
        provider.add_dimensioned(name, value, dimensions)
    else:
        count_by(name, value, **dimensions)


def count_run(metrics: Metrics, values: dict[str, float], x_errors: dict[str, int]) -> None:
    """A scheduled run's figures (name -> value), and X's error answers as XApiErrors by Code."""
    for name, value in values.items():
        count(metrics, name, value)
    for code, n in x_errors.items():
        count_by(M.X_API_ERRORS, n, Code=code)


@contextmanager
def maybe_traced(tracer: Any | None, name: str):
    if tracer is None:
        yield
    else:
        with tracer.provider.in_subsegment(name):
            yield
