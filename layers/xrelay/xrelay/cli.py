"""The ``xrelay`` command line: run the stack locally, send and invoke, inspect events.

Every command that touches AWS uses the standard credential chain and ``AWS_ENDPOINT_URL``, so
the same command works against ``xrelay local`` and a deployed stack; resources are found from
the stack (``--stack-name``, default from samconfig.toml), never typed in.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .stack import default_stack_name, project_root

LOCAL_AWS = "http://127.0.0.1:5000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xrelay", description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default=None, help="CloudFormation stack (default: samconfig.toml's)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("local", help="run the whole stack locally (moto in server mode, no Docker)")
    p.add_argument("--port", type=int, default=3000, help="HTTP port of the webhook API (default 3000)")
    p.add_argument("--aws-port", type=int, default=5000, help="port of the emulated AWS (default 5000)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--no-schedules", action="store_true",
                   help="do not run the scheduled functions (reconcile, replay) on their rate")
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("send", help="sign a delivery file the way X does and POST it")
    p.add_argument("file", type=Path)
    p.add_argument("--url", default="http://127.0.0.1:3000/webhook")
    p.add_argument("--unsigned", action="store_true", help="send without a signature (to see the refusal)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("invoke", help="run one function of template.yaml against the stack's resources")
    p.add_argument("function", help="logical id, e.g. IntakeFunction")
    p.add_argument("--event", type=Path, help="trigger event JSON (default: events/<function>.json)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("events", help="inspect and repair the event store")
    esub = p.add_subparsers(dest="events_command", required=True)
    e = esub.add_parser("get", help="print one stored event record")
    e.add_argument("key")
    e.set_defaults(func=cmd_events_get)
    e = esub.add_parser("list", help="a subscribed user's events, oldest first")
    e.add_argument("--user", required=True)
    e.add_argument("--limit", type=int, default=50)
    e.set_defaults(func=cmd_events_list)
    e = esub.add_parser("quarantine", help="list deliveries kept raw because they did not normalise")
    e.add_argument("--all", action="store_true", help="include reprocessed ones")
    e.set_defaults(func=cmd_events_quarantine)
    e = esub.add_parser("reprocess", help="run quarantined deliveries through intake again (after a fix)")
    e.set_defaults(func=cmd_events_reprocess)

    e = esub.add_parser("republish", help="put stored events back on the queue (after the publisher gave up)")
    group = e.add_mutually_exclusive_group(required=True)
    group.add_argument("--from-failures", action="store_true",
                       help="the windows of the batches in the publisher's failure queue (deleted once republished)")
    group.add_argument("--since", type=_utc, help="ISO 8601 UTC, e.g. 2026-11-25T08:00:00Z")
    e.add_argument("--until", type=_utc, help="ISO 8601 UTC (default: now)")
    e.set_defaults(func=cmd_events_republish)
    _add_ops_parsers(sub, esub)  # events tail, dlq redrive

    p = sub.add_parser("subscriptions", help="the desired state of X's side (webhook, AAA and XAA subscriptions)")
    ssub = p.add_subparsers(dest="subscriptions_command", required=True)
    s = ssub.add_parser("apply", help="validate a desired-state YAML file and store it for the reconcile")
    s.add_argument("file", type=Path)
    s.set_defaults(func=cmd_subscriptions_apply)
    s = ssub.add_parser("status", help="desired vs. X's actual state, and what the next reconcile will do")
    s.set_defaults(func=cmd_subscriptions_status)

    p = sub.add_parser("replay", help="the outage ledger: declare an outage for the replay, or see what was recovered",
                       description="With --from/--to: record an outage the ReplayFunction will replay with X's "
                                   "replay API (e.g. after a planned maintenance). `replay status`: the ledger.")
    p.add_argument("--from", dest="start", type=_utc, help="ISO 8601 UTC, e.g. 2026-11-25T08:00:00Z")
    p.add_argument("--to", dest="end", type=_utc, help="ISO 8601 UTC, after --from")
    p.add_argument("--reason", default="", help="kept with the interval, shown by `replay status`")
    p.set_defaults(func=cmd_replay_declare)
    rsub = p.add_subparsers(dest="replay_command")
    r = rsub.add_parser("status", help="outages (open, pending, replaying, recovered, lost), replay jobs and windows")
    r.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/replay-status.schema.json)")
    r.set_defaults(func=cmd_replay_status)

    p = sub.add_parser("users", help="users' authorisations of the app (kept in Secrets Manager)")
    usub = p.add_subparsers(dest="users_command", required=True)
    u = usub.add_parser("authorize", help="store a user's OAuth 1.0a token pair or OAuth 2.0 tokens")
    u.add_argument("user_id")
    u.add_argument("--access-token", help="OAuth 1.0a access token")
    u.add_argument("--access-token-secret", help="OAuth 1.0a access token secret")
    u.add_argument("--oauth2-token", help="OAuth 2.0 user access token")
    u.add_argument("--refresh-token", help="OAuth 2.0 refresh token (offline.access), used before expiry")
    u.add_argument("--expires-in", type=int, default=7200, help="seconds the OAuth 2.0 token is valid (X: 7200)")
    u.set_defaults(func=cmd_users_authorize)

    p = sub.add_parser("teardown", help="unregister this stack's webhook and subscriptions at X, before `sam delete`")
    # SUPPRESS: absent here, `xrelay --stack-name X teardown` keeps its value (a subparser default would replace it).
    p.add_argument("--stack-name", default=argparse.SUPPRESS, help="CloudFormation stack (default: samconfig.toml's)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/teardown.schema.json)")
    p.add_argument("--keep-webhook", action="store_true", help="remove the subscriptions only, keep the webhook")
    p.set_defaults(func=cmd_teardown)

    p = sub.add_parser("status", help="one screen: am I losing events? (exit 1 when something needs a person)")
    p.add_argument("--stack-name", default=argparse.SUPPRESS, help="CloudFormation stack (default: samconfig.toml's)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/status.schema.json)")
    p.add_argument("--acknowledge-lost", action="store_true",
                   help="record the outage minutes lost so far as known, so they stop failing the status")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("schema", help="print the JSON Schema of the canonical event record (or of a command's --json)")
    p.add_argument("name", nargs="?", default="event-record", choices=["event-record", *COMMAND_SCHEMAS],
                   help="event-record (default), or a command whose --json output to describe")
    p.set_defaults(func=cmd_schema)

    args = parser.parse_args(argv)
    args.stack_name = args.stack_name or default_stack_name()
    try:
        return args.func(args) or 0
    except LookupError as exc:
        print(f"xrelay: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------- local / send / invoke


def cmd_local(args: argparse.Namespace) -> int:
    import logging

    from moto.server import ThreadedMotoServer

    from .local import LocalStack, app_secret_name, app_secret_summary, use_local_aws

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    endpoint = f"http://{args.host}:{args.aws_port}"
    server = ThreadedMotoServer(ip_address=args.host, port=args.aws_port, verbose=False)
    server.start()
    use_local_aws(endpoint)
    stack = LocalStack(project_root(), args.stack_name)
    stack.provision()
    stop = threading.Event()
    schedules = [] if args.no_schedules else stack.schedulers(stop)
    for thread in [*stack.stream_pollers(stop), *schedules]:
        thread.start()
    http = stack.http_server(args.host, args.port)
    url = f"http://{args.host}:{args.port}/webhook"
    secret_lines = "\n".join(f"    {line}" for line in app_secret_summary())
    x_api = os.environ.get("X_API_BASE_URL")
    x_api = (f"{x_api} (from X_API_BASE_URL)" if x_api else
             f"{stack.parameters().get('XApiBaseUrl')} (XApiBaseUrl's default; set X_API_BASE_URL to change it)")
    schedule_text = "off (--no-schedules)" if args.no_schedules else "; ".join(
        f"{function} {expression}" + ("" if every else " (cron: not run locally)")
        for function, expression, every in stack.scheduled())
    print(f"""xrelay local stack {args.stack_name!r} is up.
  webhook URL       {url}   (GET ?crc_token=... for the CRC, POST for deliveries)
  emulated AWS      {endpoint}   (moto; export AWS_ENDPOINT_URL={endpoint} for other commands)
  X API             {x_api}
  X app secret      {app_secret_name(args.stack_name)!r} (`xrelay send` signs with its consumer_secret)
{secret_lines}
  schedules         {schedule_text}
Try it:
  curl '{url}?crc_token=test-token'
  .venv/bin/xrelay send events/deliveries/xaa_post_create.json --url {url}
  AWS_ENDPOINT_URL={endpoint} .venv/bin/xrelay events list --user 1111111111111111111
Ctrl-C stops it.""", flush=True)

    def shutdown(*_: Any) -> None:
        stop.set()
        threading.Thread(target=http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        http.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.stop()
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    import httpx

    from .local import consumer_secret_from_env
    from .signature import SIGNATURE_HEADER, sign

    body = args.file.read_bytes()
    headers = {"content-type": "application/json"}
    if not args.unsigned:
        headers[SIGNATURE_HEADER] = sign(consumer_secret_from_env()[0], body)
    response = httpx.post(args.url, content=body, headers=headers, timeout=15)
    print(response.status_code, response.text)
    return 0 if response.status_code < 400 else 1


def _aws_env() -> None:
    """Default to the local stack when no endpoint and no credentials are configured."""
    from .local import use_local_aws

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint is None and "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_PROFILE" not in os.environ:
        use_local_aws(LOCAL_AWS)
    elif endpoint and urlsplit(endpoint).hostname in ("127.0.0.1", "localhost", "::1"):
        use_local_aws(endpoint)  # moto accepts any credentials: don't make people invent some
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def cmd_invoke(args: argparse.Namespace) -> int:
    from .local import LocalStack

    _aws_env()
    root = project_root()
    path = args.event or root / "events" / f"{args.function}.json"
    event = json.loads(Path(path).read_text())
    result = LocalStack(root, args.stack_name).invoke(args.function, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


# ---------------------------------------------------------------------------- events


def _stores(stack_name: str):
    from .stack import Stack
    from .store import EventStore, StateStore

    _aws_env()
    stack = Stack(stack_name)
    return EventStore(stack.physical("EventsTable"), 30), StateStore(stack.physical("StateTable"))


def cmd_events_get(args: argparse.Namespace) -> int:
    events, _ = _stores(args.stack_name)
    record = events.get(args.key)
    if record is None:
        print(f"xrelay: no event {args.key!r}", file=sys.stderr)
        return 1
    for redaction in record.redactions:  # on stderr, so that stdout stays the record's JSON
        why = f"post {redaction.post_id} was deleted" if redaction.post_id else "the user revoked the app"
        what = "the whole event" if redaction.scope == "event" else f"the copies of post {redaction.post_id}"
        print(f"REDACTED at {redaction.at.isoformat()}: {why} ({redaction.by}); {what} cut down to ids and times",
              file=sys.stderr)
    print(record.model_dump_json(indent=2))
    return 0


def cmd_events_list(args: argparse.Namespace) -> int:
    events, _ = _stores(args.stack_name)
    rows = [(str(r.occurred_at or r.received_at), r.source.value, r.event_type, r.event_key)
            for r in events.by_user(args.user, limit=args.limit)]
    _table(("when", "source", "type", "key"), rows)
    return 0


def cmd_events_quarantine(args: argparse.Namespace) -> int:
    _, state = _stores(args.stack_name)
    rows = [(q["received_at"], q["status"], q["delivery_id"][:16], q["reason"][:80])
            for q in state.quarantined(include_done=args.all)]
    _table(("received", "status", "delivery", "reason"), rows)
    return 0


def cmd_events_reprocess(args: argparse.Namespace) -> int:
    from aws_lambda_powertools import Logger, Metrics

    from .intake import Intake, NestedTooDeep, parse_delivery
    from .normalize import delivery_id

    events, state = _stores(args.stack_name)
    metrics = Metrics(namespace="xrelay", service="cli")
    intake = Intake(events=events, state=state, load_secrets=lambda: None, log=Logger(service="cli"),
                    metrics=metrics)
    done = failed = 0
    for item in state.quarantined():
        body = item["body"]
        assert delivery_id(body) == item["delivery_id"]
        try:  # a body intake kept without reading it (nested too deep) may still be unreadable
            doc, problem = parse_delivery(body)
        except NestedTooDeep as exc:
            doc, problem = None, str(exc)
        response = intake.ingest(doc, body, reprocessing=True) if doc is not None else None
        if response is None:
            state.mark_quarantine(item["delivery_id"], "pending", problem)
            failed += 1
            print(f"still failing {item['delivery_id'][:16]}: {problem}")
        elif response.status == 200 and not response.body.get("errors"):
            state.mark_quarantine(item["delivery_id"], "reprocessed")
            done += 1
            print(f"reprocessed {item['delivery_id'][:16]}: {response.body['new']} new, "
                  f"{response.body['duplicates']} already stored")
        else:
            reason = "; ".join(response.body.get("errors", [])) or response.body.get("error", "failed")
            state.mark_quarantine(item["delivery_id"], "pending", reason)
            failed += 1
            print(f"still failing {item['delivery_id'][:16]}: {reason}")
    metrics.clear_metrics()
    print(f"{done} reprocessed, {failed} still quarantined")
    return 1 if failed else 0


def _utc(text: str):
    from .normalize import parse_time

    when = parse_time(text)
    if when is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return when


def cmd_events_republish(args: argparse.Namespace) -> int:
    import logging
    from datetime import UTC, datetime

    from .aws import client
    from .repair import republish, republish_failed_batches
    from .stack import Stack

    events, _ = _stores(args.stack_name)
    stack = Stack(args.stack_name)
    sqs, queue = client("sqs"), stack.queue_url("EventsQueue")
    log = logging.getLogger("xrelay.repair")
    if not args.from_failures:
        result = republish(events, sqs, queue, args.since, args.until or datetime.now(UTC), log)
        print(f"{result.found} stored events in the window, {result.published} republished, {result.failed} failed")
        return 1 if result.failed else 0
    handled = failed = 0
    for batch, result in republish_failed_batches(events, sqs, queue, stack.queue_url("PublishFailuresQueue"), log):
        if batch is None:
            print("skipped a message that is not a stream batch failure (left in the queue)")
            continue
        handled, failed = handled + 1, failed + bool(result.failed)
        print(f"batch of {batch.size} ({batch.since:%Y-%m-%dT%H:%M:%SZ} .. {batch.until:%H:%M:%SZ}): "
              f"{result.found} stored events, {result.published} republished, {result.failed} failed")
    print(f"{handled} failed batches handled, {failed} still failing")
    return 1 if failed else 0


# ---------------------------------------------------------------------------- day-2: events tail, dlq redrive


def _add_ops_parsers(sub: Any, esub: Any) -> None:
    e = esub.add_parser("tail", help="follow new events in the store (never takes the consumers' messages)")
    e.add_argument("--type", action="append", dest="types", metavar="TYPE", help="only this event type (repeatable)")
    e.add_argument("--user", help="only this subscribed user's events (reads the ByUser index)")
    e.add_argument("--since", default="5m",
                   help="ISO 8601 UTC or a duration back from now, e.g. 10m, 2h (default 5m)")
    e.add_argument("--once", action="store_true", help="print what is there and exit")
    e.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    e.add_argument("--json", action="store_true", help="one event record per line (the queue's JSON)")
    e.set_defaults(func=cmd_events_tail)
    p = sub.add_parser("dlq", help="the events dead-letter queue")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    d = dsub.add_parser("redrive", help="move the events DLQ's messages back to the events queue")
    d.add_argument("--max", type=int, dest="max_messages", metavar="N",
                   help="move at most N (copies them: a move task cannot be bounded)")
    d.add_argument("--copy", action="store_true",
                   help="receive, send and delete instead of SQS's StartMessageMoveTask")
    d.add_argument("--no-wait", dest="wait", action="store_false", help="start the move task and return")
    d.add_argument("--json", action="store_true", help="the result as JSON on stdout (progress goes to stderr)")
    d.set_defaults(func=cmd_dlq_redrive)


def cmd_events_tail(args: argparse.Namespace) -> int:
    from .ops import TAIL_HEADER, EventTail, parse_since, tail_json, tail_line

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"xrelay: --since: {exc}", file=sys.stderr)
        return 2
    events, _ = _stores(args.stack_name)
    tail = EventTail(events, since, types=args.types, user=args.user)
    if not args.json:
        print(TAIL_HEADER, flush=True)

    def emit(record: Any) -> None:
        print(tail_json(record) if args.json else tail_line(record), flush=True)

    try:
        tail.follow(emit, args.interval, stop=lambda: args.once)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from .aws import client
    from .ops import redrive
    from .stack import Stack

    _aws_env()
    stack = Stack(args.stack_name)
    if args.max_messages is not None and args.max_messages < 1:
        print("xrelay: --max must be at least 1", file=sys.stderr)
        return 2
    try:
        result = redrive(client("sqs"), stack.queue_url("EventsDLQ"), stack.queue_url("EventsQueue"),
                         max_messages=args.max_messages, copy=args.copy, wait=args.wait,
                         progress=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted: a move task goes on without us; messages being copied reappear in the DLQ "
              "within 2 minutes (at worst one batch is both moved and still there)", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{result.method}: {result.moved} moved, {result.failed} not sent (still in the DLQ), "
              f"{result.not_deleted} sent but not deleted (will be redriven again); {result.status.lower()}"
              + (f", task {result.task_handle}" if result.task_handle and result.status == "RUNNING" else "")
              + (f": {result.reason}" if result.reason else ""))
        for error in result.errors:
            print(f"  {error}")
    return 0 if result.ok else 1


def cmd_subscriptions_apply(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from .desired import DesiredStateError, load_desired

    try:
        desired = load_desired(args.file.read_text(), source=str(args.file))
    except OSError as exc:
        print(f"xrelay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except DesiredStateError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for warning in desired.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _, state = _stores(args.stack_name)
    state.put_desired(desired.to_json(), str(args.file), datetime.now(UTC))
    print(f"desired state stored for stack {args.stack_name!r}: webhook {desired.webhook.url}, "
          f"{len(desired.account_activity)} AAA users, {len(desired.activity)} XAA subscriptions, "
          f"prune {'on' if desired.prune else 'off (report only)'}")
    return 0


def _stack_settings(stack_name: str):
    """Settings for a run from this machine: the stack's resources and Parameters, found by name."""
    from .config import Settings
    from .stack import Stack

    _aws_env()
    stack = Stack(stack_name)
    params = stack.parameters()
    return Settings.from_env({
        "STATE_TABLE": stack.physical("StateTable"),
        "X_APP_SECRET_ARN": params.get("XAppSecretArn", ""),
        # X_API_BASE_URL wins, as for the functions in local runs (a fake X, a proxy).
        "X_API_BASE_URL": os.environ.get("X_API_BASE_URL") or params.get("XApiBaseUrl") or "https://api.x.com",
        "STACK_NAME": stack_name,
        "SECRET_CACHE_SECONDS": "0",
    })


def cmd_subscriptions_status(args: argparse.Namespace) -> int:
    from .reconcile import rows_for_status, run_for_stack
    from .store import StateStore

    settings = _stack_settings(args.stack_name)
    state = StateStore(settings.state_table)
    applied = state.desired()
    run = run_for_stack(settings, dry_run=True)
    if run.idle or run.error:
        print(f"xrelay: {run.idle or run.error}", file=sys.stderr)
        return 2 if run.idle else 1
    desired, report, obs = run.desired, run.report, run.observation
    print(f"desired state of stack {args.stack_name!r}: applied {applied['applied_at']} from {applied['source']}; "
          f"prune {'on' if desired.prune else 'off (extras are only reported)'}")
    _table(("WHAT", "DESIRED", "ACTUAL (X)", "NEXT RECONCILE"),
           [(r.what, r.desired, r.actual, r.next) for r in rows_for_status(report.plan, obs)])
    the_plan = report.plan
    print(f"\n{len(the_plan.actions)} change(s) planned, drift {the_plan.drift}"
          + (f"; needs authorization: {', '.join(sorted(the_plan.needs_authorization))}"
             if the_plan.needs_authorization else "")
          + (f"; revoked: {', '.join(sorted(the_plan.revoked))}" if the_plan.revoked else ""))
    if obs.errors:
        print("could not read: " + "; ".join(obs.errors))
    outages = state.webhook_outages()
    if outages:
        last = outages[-1]
        print(f"webhook outages recorded: {len(outages)}; last from {last['from']} to {last.get('to', 'now (open)')}")
    return 0


def cmd_replay_declare(args: argparse.Namespace) -> int:
    from .outages import Ledger

    if args.start is None or args.end is None:
        print("xrelay: replay needs --from and --to (or `xrelay replay status`)", file=sys.stderr)
        return 2
    settings = _stack_settings(args.stack_name)
    try:
        new = Ledger(settings.state_table).declare(args.start, args.end, reason=args.reason)
    except ValueError as exc:
        print(f"xrelay: {exc}", file=sys.stderr)
        return 2
    minutes = int((args.end - args.start).total_seconds() // 60)
    print(f"outage {args.start:%Y-%m-%dT%H:%M:%SZ} to {args.end:%Y-%m-%dT%H:%M:%SZ} ({minutes} min) "
          + ("recorded" if new else "was already recorded")
          + ": ReplayFunction replays it on its next run (every 5 minutes; `xrelay invoke ReplayFunction` now). "
          "Follow it with `xrelay replay status`.")
    return 0


def cmd_replay_status(args: argparse.Namespace) -> int:
    from .replay import ledger_status

    settings = _stack_settings(args.stack_name)
    status = ledger_status(settings)
    if args.json:
        print(status.model_dump_json(indent=2, by_alias=True))
        return 0
    print(f"outage ledger of stack {args.stack_name!r} at {status.now}; webhook {status.webhook_id or 'unknown'}; "
          f"{status.minutes_unrecovered} minute(s) unrecovered, {status.minutes_lost} lost")
    if status.waiting:
        print(f"next: {status.waiting}")
    if not status.intervals:
        print("no outage recorded")
    else:
        _table(("SOURCE", "REF", "FROM", "TO", "STATUS", "MIN", "RECOVERED", "PENDING", "LOST", "JOBS"),
               [(i.source, i.ref[:40], i.from_, i.to or "(open)", i.status, i.minutes, i.recovered_minutes,
                 i.pending_minutes, i.lost_minutes, ",".join(i.job_ids) or "-") for i in status.intervals])
    if status.jobs:
        print()
        _table(("JOB", "FROM_DATE", "TO_DATE", "SUBMITTED", "STATUS", "X SAYS", "RESUBMITS"),
               [(j.job_id, j.from_date or "?", j.to_date or "?", j.submitted_at or "?", j.status,
                 j.x_description or "-", ",".join(j.resubmission_of) or "-") for j in status.jobs])
    if status.lost:
        print("\nlost beyond X's 24-hour horizon: " + "; ".join(f"{a} to {b}" for a, b in status.lost))
    return 0


def cmd_users_authorize(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from .users import StoredUser, UserCredentialStore, secret_prefix
    from .xapi import UserCredentials

    oauth1 = args.access_token or args.access_token_secret
    if bool(oauth1) == bool(args.oauth2_token):
        print("xrelay: give either --access-token and --access-token-secret (OAuth 1.0a) "
              "or --oauth2-token [--refresh-token] (OAuth 2.0)", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    try:
        if oauth1:
            creds = UserCredentials.oauth1(args.access_token or "", args.access_token_secret or "")
            user = StoredUser(args.user_id, creds)
        else:
            user = StoredUser(args.user_id, UserCredentials.oauth2(args.oauth2_token), args.refresh_token,
                              now + timedelta(seconds=args.expires_in))
        _, state = _stores(args.stack_name)
        UserCredentialStore(args.stack_name).put(user)
    except ValueError as exc:  # never echoes a token: the messages name fields, not values
        print(f"xrelay: {exc}", file=sys.stderr)
        return 2
    state.mark_authorized(args.user_id, now)
    print(f"user {args.user_id} authorised ({user.credentials.kind}); stored in Secrets Manager as "
          f"{secret_prefix(args.stack_name)}{args.user_id}")
    return 0


# The JSON Schemas of what xrelay prints with --json, by name (docs/schemas/<name>.schema.json);
# "event-record" is the consumers' record (docs/event-record.schema.json). module:attribute of a
# pydantic model, imported only when asked for.
COMMAND_SCHEMAS = {
    "dlq-redrive": "xrelay.ops:RedriveResult",
    "replay-status": "xrelay.replay:LedgerStatus",
    "status": "xrelay.status:StatusReport",
    "teardown": "xrelay.teardown:TeardownResult",
}


def cmd_schema(args: argparse.Namespace) -> int:
    if args.name == "event-record":
        from .models import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    import importlib

    module, attribute = COMMAND_SCHEMAS[args.name].split(":")
    model = getattr(importlib.import_module(module), attribute)
    # Serialization mode: these describe what the commands print (computed fields included).
    print(json.dumps(model.model_json_schema(by_alias=True, mode="serialization"), indent=2))
    return 0


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    if not rows:
        print("(none)")


def cmd_teardown(args: argparse.Namespace) -> int:
    from contextlib import redirect_stdout

    from botocore.exceptions import ClientError

    from .teardown import Outcome, TeardownResult, conclusion, notes, progress_line, rows, run_for_stack

    out = sys.stderr if args.json else sys.stdout  # with --json, stdout holds the one document only
    listed = False

    def show(result: TeardownResult) -> None:
        nonlocal listed
        listed = True
        with redirect_stdout(out):
            print(f"stack {args.stack_name!r} at X, webhook {result.webhook_url}:")
            _table(("WHAT", "ID", "TEARDOWN"), rows(result))
            for line in notes(result):
                print(line)

    def confirm(result: TeardownResult) -> bool:
        show(result)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            print("xrelay: not confirmed (stdin is not a terminal): run again with --yes", file=sys.stderr)
            return False
        what = f"Remove these {len(result.items)} item(s) at X and pause" if result.items else \
            "Nothing is left at X. Pause"
        print(f"{what} the reconcile until the next apply? [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    try:
        settings = _stack_settings(args.stack_name)
    except ClientError as exc:  # CloudFormation: "Stack with id ... does not exist"
        print(f"xrelay: stack {args.stack_name!r}: {exc}", file=sys.stderr)
        return 2
    result = run_for_stack(
        settings, dry_run=args.dry_run, keep_webhook=args.keep_webhook, confirm=confirm,
        progress=lambda n, total, item: print(progress_line(n, total, item), file=sys.stderr, flush=True))
    if not listed:  # dry run, nothing to do, or X unreadable: confirm() was not asked
        show(result)
    elif result.outcome in (Outcome.DONE, Outcome.INCOMPLETE):
        with redirect_stdout(out):
            _table(("WHAT", "ID", "TEARDOWN"), rows(result))
    print(conclusion(result), file=out)
    if args.json:
        print(result.model_dump_json(indent=2))
    return {Outcome.DONE: 0, Outcome.NOTHING_TO_DO: 0, Outcome.DRY_RUN: 0, Outcome.DECLINED: 2}.get(result.outcome, 1)


def cmd_status(args: argparse.Namespace) -> int:
    from .status import gather, render

    _aws_env()
    # Progress on a terminal only: cron and CI get the report alone.
    progress = (lambda step: print(f"... {step}", file=sys.stderr, flush=True)) if sys.stderr.isatty() else None
    report = gather(args.stack_name, acknowledge_lost=args.acknowledge_lost, progress=progress)
    if report.outages.acknowledged_now:
        print(f"acknowledged {report.outages.acknowledged_now} lost minute(s)", file=sys.stderr)
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
