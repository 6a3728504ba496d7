"""The ``xrelay`` command line: run the stack locally, send and invoke, inspect events.

Every command that touches AWS uses the standard credential chain and ``AWS_ENDPOINT_URL``, so
the same command works against ``xrelay local`` and a deployed stack; resources are found from
the stack (``--stack-name``, default from samconfig.toml), never typed in. Each one says on
stderr which target it talks to (:mod:`xrelay.tools.cli.target`); expected failures are one line and an
exit code (:mod:`xrelay.tools.cli.cli_errors`), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xrelay.tools.cli.cli_errors import CliError, at_least_one, explain, seconds, tcp_port
from xrelay.tools.cli.stack import default_stack_name, project_root
from xrelay.tools.cli.target import LOCAL_AWS

DESCRIPTION = "xrelay: run the stack locally, send and invoke, inspect and repair events, operate a deployed stack."
EPILOG = ("Exit codes: 0 done; 1 done, and the result is a failure; 2 wrong command line, input file or stack "
          "name; 3 target unreachable (no local stack running, no network, credentials missing or refused); "
          "130 interrupted.")
# This command's choices, for _aws_env (set by main).
_session: dict[str, Any] = {"local": False, "stack": "xrelay", "announced": False, "target": None,
                           "account": None, "region": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xrelay", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--stack-name", default=None, help="CloudFormation stack (default: samconfig.toml's)")
    parser.add_argument("--local", action="store_true",
                        help=f"talk to the local emulator ({LOCAL_AWS}, or AWS_ENDPOINT_URL's loopback endpoint) "
                             "even when AWS credentials are configured")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("local", help="run the whole stack locally (moto in server mode, no Docker)")
    p.add_argument("--port", type=tcp_port, default=3000, help="HTTP port of the webhook API (default 3000)")
    p.add_argument("--aws-port", type=tcp_port, default=5000, help="port of the emulated AWS (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="address both servers listen on (default 127.0.0.1)")
    p.add_argument("--no-schedules", action="store_true",
                   help="do not run the scheduled functions (reconcile, replay) on their rate")
    p.add_argument("--fresh", action="store_true",
                   help="start empty: ignore and delete the data saved by the last run (make run FRESH=1)")
    p.add_argument("--logs", action="store_true",
                   help="print the functions' own JSON logs and metrics too (always written to the log file)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the local data is saved on shutdown and the function logs go (default .xrelay-local)")
    p.add_argument("--event-bus-mode", choices=("off", "also", "only"), default=None,
                   help="the EventBusMode Parameter: also publish to (or only to) an emulated EventBridge bus, "
                        "whose entries a rule sends to the queue <stack>-bus-events")
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("send", help="sign a delivery file the way X does and POST it")
    p.add_argument("file", type=Path, help="a delivery's JSON body, e.g. events/deliveries/xaa_post_create.json")
    p.add_argument("--url", default="http://127.0.0.1:3000/webhook",
                   help="the webhook to POST to (default: the local stack's, http://127.0.0.1:3000/webhook)")
    p.add_argument("--unsigned", action="store_true", help="send without a signature (to see the refusal)")
    p.add_argument("--scheme", choices=("oauth2", "legacy", "both"), default=None,
                   help="X's signature header(s) to sign with: oauth2 (X_CLIENT_SECRET), legacy (X_CONSUMER_SECRET) "
                        "or both (default: oauth2 when X_CLIENT_SECRET is set, as X signs for an OAuth 2.0 app)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("invoke", help="run one function of template.yaml against the stack's resources")
    p.add_argument("function", help="logical id, e.g. IntakeFunction")
    p.add_argument("--event", type=Path,
                   help="trigger event JSON (default: events/<function>.json; {{now-20m}} placeholders are filled)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("events", help="inspect and repair the event store")
    esub = p.add_subparsers(dest="events_command", required=True)
    e = esub.add_parser("get", help="print one stored event record")
    e.add_argument("key", help="the event key (events list and events tail show them)")
    e.set_defaults(func=cmd_events_get)
    e = esub.add_parser("list", help="a subscribed user's events, oldest first")
    e.add_argument("--user", required=True, help="the subscribed user's id")
    e.add_argument("--limit", type=at_least_one, default=50, help="at most this many events (default 50)")
    e.set_defaults(func=cmd_events_list)
    e = esub.add_parser("quarantine", help="list deliveries kept raw because they did not normalise")
    e.add_argument("--all", action="store_true", help="include reprocessed ones")
    e.set_defaults(func=cmd_events_quarantine)
    e = esub.add_parser("reprocess", help="run quarantined deliveries through intake again (after a fix)")
    e.set_defaults(func=cmd_events_reprocess)
    e = esub.add_parser("discard", help="give up on a quarantined delivery (kept on record as discarded: who, why)")
    e.add_argument("delivery", help="its id, or a prefix of it as `events quarantine` shows")
    _add_reason_and_by(e, "why it is given up (kept with it, shown by `quarantine --all`)")
    e.set_defaults(func=cmd_events_discard)

    e = esub.add_parser("republish", help="put stored events back on the queue (after the publisher gave up)")
    group = e.add_mutually_exclusive_group(required=True)
    group.add_argument("--from-failures", action="store_true",
                       help="the windows of the batches in the publisher's failure queue (deleted once republished)")
    group.add_argument("--since", type=_when,
                       help="ISO 8601 UTC or a duration back from now, e.g. 2026-11-25T08:00:00Z, 10m, 2h")
    e.add_argument("--until", type=_when, help="ISO 8601 UTC or a duration back from now (default: now)")
    e.set_defaults(func=cmd_events_republish)
    _add_set_aside_parsers(esub)
    _add_ops_parsers(sub, esub)  # events tail, dlq redrive

    p = sub.add_parser("subscriptions", help="the desired state of X's side (webhook, AAA and XAA subscriptions)")
    ssub = p.add_subparsers(dest="subscriptions_command", required=True)
    s = ssub.add_parser("apply", help="validate a desired-state YAML file and store it for the reconcile")
    s.add_argument("file", type=Path, help="the desired-state YAML (README: Subscriptions)")
    s.set_defaults(func=cmd_subscriptions_apply)
    s = ssub.add_parser("status", help="desired vs. X's actual state, and what the next reconcile will do")
    s.set_defaults(func=cmd_subscriptions_status)

    p = sub.add_parser("replay", help="the outage ledger: declare an outage for the replay, or see what was recovered",
                       description="With --from/--to: record an outage the ReplayFunction will replay with X's "
                                   "replay API (e.g. after a planned maintenance). `replay status`: the ledger.")
    p.add_argument("--from", dest="start", type=_when,
                   help="ISO 8601 UTC or a duration back from now, e.g. 2026-11-25T08:00:00Z, 2h")
    p.add_argument("--to", dest="end", type=_when, help="ISO 8601 UTC or a duration back from now, after --from, "
                                                       "not in the future")
    p.add_argument("--reason", default="", help="kept with the interval, shown by `replay status`")
    p.set_defaults(func=cmd_replay_declare)
    rsub = p.add_subparsers(dest="replay_command")
    r = rsub.add_parser("status", help="outages (open, pending, replaying, recovered, lost), replay jobs and windows")
    r.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/replay-status.schema.json)")
    r.set_defaults(func=cmd_replay_status)

    from xrelay.tools.cli.operator_cli import add_parsers as add_operator_parsers
    add_operator_parsers(sub)  # users authorize/login, outputs, doctor

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

    p = sub.add_parser("env", help="what a consumer needs to read the stack's events (eval \"$(xrelay env)\")",
                       description="Shell exports (default) or JSON: the AWS endpoint and throwaway credentials of "
                                   "the local emulator (none for a deployed stack: use your own), the region, the "
                                   "events queue URL, the DLQ URL and the table names, from the stack's Outputs.")
    p.add_argument("--stack-name", default=argparse.SUPPRESS, help="CloudFormation stack (default: samconfig.toml's)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/env.schema.json)")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("schema", help="print the JSON Schema of the canonical event record (or of a command's --json)")
    p.add_argument("name", nargs="?", default="event-record", choices=["event-record", *COMMAND_SCHEMAS],
                   help="event-record (default), or a command whose --json output to describe")
    p.set_defaults(func=cmd_schema)

    args = parser.parse_args(argv)
    args.stack_name = args.stack_name or default_stack_name()
    _session.update(local=args.local, stack=args.stack_name, announced=False)
    try:
        return args.func(args) or 0
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        failure = explain(exc, args.stack_name)
        if failure is None:  # not an expected failure: a bug, keep its traceback
            raise
        _print_error(failure.message)
        return failure.code


def _print_error(message: str) -> None:
    try:
        print(f"xrelay: {message}", file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass


def _quiet_stdout() -> None:
    """Send what is left of stdout nowhere, so the interpreter's final flush does not raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------- local / send / invoke


def _free_port_after(host: str, port: int, avoid: set[int]) -> int:
    from xrelay.tools.local.local import port_taken

    candidate = port + 1
    while candidate in avoid or port_taken(host, candidate):
        candidate += 1
    return candidate


def _check_ports(args: argparse.Namespace) -> None:
    """Both ports free, or one line naming the taken one and ports that are free (before anything starts)."""
    from xrelay.tools.local.local import port_taken

    if args.port == args.aws_port:
        raise CliError(f"--port and --aws-port are both {args.port}: the webhook API and the emulated AWS need two")
    for option, port, what in (("--port", args.port, "the webhook API"),
                               ("--aws-port", args.aws_port, "the emulated AWS")):
        why = port_taken(args.host, port)
        if why:
            avoid = {args.port, args.aws_port}
            web = args.port if option != "--port" else _free_port_after(args.host, args.port, avoid)
            aws = args.aws_port if option != "--aws-port" else _free_port_after(args.host, args.aws_port, avoid)
            raise CliError(f"port {port} ({what}, {option}) on {args.host} is taken: {why}. Choose free ones: "
                           f"make run PORT={web} AWS_PORT={aws}  (or xrelay local --port {web} --aws-port {aws})")


def cmd_local(args: argparse.Namespace) -> int:
    import logging

    from moto.server import ThreadedMotoServer

    from xrelay.tools.local import local_state
    from xrelay.tools.local.console import Console
    from xrelay.tools.local.local import LocalStack, use_local_aws, wait_listening

    _check_ports(args)
    root = project_root()
    state_dir = args.state_dir or root / ".xrelay-local"
    saved = local_state.snapshot_path(state_dir, args.stack_name)
    log_file = state_dir / f"{args.stack_name}.log"
    console = Console(log_file, echo=args.logs)
    console.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    endpoint = f"http://{args.host}:{args.aws_port}"
    url = f"http://{args.host}:{args.port}/webhook"
    server = ThreadedMotoServer(ip_address=args.host, port=args.aws_port, verbose=False)
    server.start()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    stack: LocalStack | None = None
    try:
        if not wait_listening(args.host, args.aws_port, timeout=15):
            raise CliError(f"the emulated AWS did not start on {endpoint} within 15 s: choose another port "
                           f"(make run AWS_PORT={_free_port_after(args.host, args.aws_port, {args.port})})", 3)
        use_local_aws(endpoint)
        stack = LocalStack(root, args.stack_name)
        stack.console = console
        stack.provision({"EventBusMode": args.event_bus_mode} if args.event_bus_mode else None, webhook_url=url)
        if args.fresh:
            saved.unlink(missing_ok=True)
            data_text = "fresh (--fresh): nothing restored"
        else:
            try:
                snapshot = local_state.load(saved)
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read the saved local data {saved}: {exc}; "
                               "start empty with make run FRESH=1 (xrelay local --fresh)") from None
            if snapshot is not None:  # the app secret just seeded from the environment wins over a saved one
                local_state.restore(stack.stack, stack.template, snapshot, keep_secret=_not_app_secret(stack))
            data_text = f"restored from {saved}: {snapshot.summary()}" if snapshot else "nothing saved yet"
        try:
            http = stack.http_server(args.host, args.port)
        except OSError as exc:  # taken since the check
            raise CliError(f"port {args.port} (the webhook API) on {args.host}: {exc.strerror}; choose another: "
                           f"make run PORT={_free_port_after(args.host, args.port, {args.aws_port})}") from None
        schedules = [] if args.no_schedules else stack.schedulers(stop)
        threads = [*stack.stream_pollers(stop), *schedules]
        for thread in threads:
            thread.start()
        _print_banner(args, stack, url, endpoint, data_text, saved, log_file)

        def shutdown(*_: Any) -> None:
            stop.set()
            threading.Thread(target=http.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        http.serve_forever(poll_interval=0.2)
        _save_local_data(stack, stop, threads, saved)
    finally:
        stop.set()
        server.stop()
    return 0


def _not_app_secret(stack: Any) -> Callable[[str], bool]:
    """What a local snapshot keeps and restores of Secrets Manager: all but the X app secret (the environment's)."""
    from xrelay.tools.local.local import app_secret_name

    return lambda name: name != app_secret_name(stack.stack.name)


def _save_local_data(stack: Any, stop: threading.Event, threads: list[threading.Thread], saved: Path) -> None:
    from xrelay.tools.local import local_state

    stop.set()
    for thread in threads:
        thread.join(timeout=10)  # an invocation under way finishes before the snapshot
    try:
        snapshot = local_state.take(stack.stack, stack.template, keep_secret=_not_app_secret(stack))
        local_state.save(saved, snapshot)
    except Exception as exc:  # the emulator's state is lost either way: say so, keep the last snapshot
        print(f"local data NOT saved ({type(exc).__name__}: {exc}); {saved} keeps the previous run's", flush=True)
        return
    print(f"local data saved to {saved} ({snapshot.summary()}); make run restores it, make run FRESH=1 "
          "starts empty", flush=True)


def _print_banner(args: argparse.Namespace, stack: Any, url: str, endpoint: str, data_text: str, saved: Path,
                  log_file: Path) -> None:
    from xrelay.tools.local.local import app_secret_name, app_secret_summary

    secret_lines = "\n".join(f"    {line}" for line in app_secret_summary())
    crc_choice = stack.environment("CrcFunction").get("CRC_SIGNING_SECRET", "auto")
    crc_secret = (crc_choice if crc_choice != "auto" else
                  "client_secret" if os.environ.get("X_CLIENT_SECRET") else "consumer_secret") + f" ({crc_choice})"
    x_api = os.environ.get("X_API_BASE_URL")
    x_api = (f"{x_api} (from X_API_BASE_URL)" if x_api else
             f"{stack.parameters().get('XApiBaseUrl')} (XApiBaseUrl's default; set X_API_BASE_URL to change it)")
    schedule_text = "off (--no-schedules)" if args.no_schedules else "; ".join(
        f"{function} {expression}" + ("" if every else " (cron: not run locally)")
        for function, expression, every in stack.scheduled())
    logs = "on the console too (--logs)" if args.logs else "not on the console (--logs, or make run LOGS=1)"
    print(f"""xrelay local stack {args.stack_name!r} is up.
  webhook URL       {url}   (GET ?crc_token=... for the CRC, POST for deliveries)
  emulated AWS      {endpoint}   (moto; export AWS_ENDPOINT_URL={endpoint} for other commands)
  X API             {x_api}
  X app secret      {app_secret_name(args.stack_name)!r} (the CRC answers with its {crc_secret})
{secret_lines}
  schedules         {schedule_text}
  local data        {data_text}; saved to {saved} on Ctrl-C
  function logs     {log_file}, {logs}
Try it:
  curl '{url}?crc_token=test-token'
  .venv/bin/xrelay send events/deliveries/xaa_post_create.json --url {url}
  AWS_ENDPOINT_URL={endpoint} .venv/bin/xrelay events list --user 1111111111111111111
  AWS_ENDPOINT_URL={endpoint} .venv/bin/xrelay env      (what a consumer needs: queue URL, credentials)
Ctrl-C stops it (and saves the local data).""", flush=True)


def cmd_send(args: argparse.Namespace) -> int:
    import httpx

    from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign
    from xrelay.tools.local.local import client_secret_from_env, consumer_secret_from_env

    body = args.file.read_bytes()
    headers = {"content-type": "application/json"}
    client_secret = client_secret_from_env()
    scheme = args.scheme or ("oauth2" if client_secret else "legacy")
    if not args.unsigned:
        if scheme in ("oauth2", "both"):
            if not client_secret:
                raise CliError(f"--scheme {scheme} signs with X_CLIENT_SECRET, which is not set: export the app's "
                               "OAuth 2.0 Client Secret as the local stack was started with, or use --scheme legacy")
            headers[OAUTH2_HEADER] = sign(client_secret, body)
        if scheme in ("legacy", "both"):
            headers[LEGACY_HEADER] = sign(consumer_secret_from_env()[0], body)
    response = httpx.post(args.url, content=body, headers=headers, timeout=15)
    print(response.status_code, response.text)
    return 0 if response.status_code < 400 else 1


def _aws_env() -> None:
    """Choose the target (xrelay.tools.cli.target), point boto3 at it, and say which one it is, once, on stderr."""
    from xrelay.tools.cli.target import choose
    from xrelay.tools.local.local import use_local_aws

    target = choose(force_local=_session["local"])
    if target.local:
        use_local_aws(target.endpoint)  # moto accepts any credentials: don't make people invent some
    if _session["announced"]:
        return
    _session["announced"] = True
    account, region = None, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not target.local:  # which account: the one question that matters before changing anything
        from xrelay.aws import client

        sts = client("sts")
        account, region = sts.get_caller_identity()["Account"], sts.meta.region_name
    _session.update(target=target, account=account, region=region)
    print(f"xrelay: {target.describe(_session['stack'], account, region)}", file=sys.stderr, flush=True)


def cmd_invoke(args: argparse.Namespace) -> int:
    from xrelay.tools.cli import template as tpl
    from xrelay.tools.local.local import LocalStack
    from xrelay.tools.local.samples import load_event

    root = project_root()
    stack = LocalStack(root, args.stack_name)
    functions = sorted(tpl.functions(stack.template))
    if args.function not in functions:  # before anything else: the names are the help
        raise CliError(f"template.yaml has no function {args.function!r}; it has {', '.join(functions)}")
    path = args.event or root / "events" / f"{args.function}.json"
    if not Path(path).is_file():
        raise CliError(f"no event file {path}: give one with --event FILE (samples are in events/)")
    try:
        event = load_event(path)  # samples' {{now-20m}} placeholders are filled with today's times
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    _aws_env()
    result = stack.invoke(args.function, event)
    print(json.dumps(result, indent=2, default=str))
    # Scheduled functions answer {"ok": false, ...}; HTTP ones a status code; streams batchItemFailures.
    failed = isinstance(result, dict) and (result.get("ok") is False or result.get("statusCode", 200) >= 500
                                           or bool(result.get("batchItemFailures")))
    return 1 if failed else 0


# ---------------------------------------------------------------------------- events


def _stores(stack_name: str):
    from xrelay.storage.store import EventStore, StateStore
    from xrelay.tools.cli.stack import Stack

    _aws_env()
    stack = Stack(stack_name)
    return EventStore(stack.physical("EventsTable"), 30), StateStore(stack.physical("StateTable"))


def _events_by_user(stack_name: str):
    """The event store for reading by user: the ByUser index if the stack has it, else a Scan, said once."""
    from xrelay.storage.store import EventStore, scan_user_notice, users_indexed
    from xrelay.tools.cli.stack import Stack

    _aws_env()
    stack = Stack(stack_name)
    events = EventStore(stack.physical("EventsTable"), 30, index_users=users_indexed(stack.parameters()))
    if not events.index_users:
        print(f"xrelay: {scan_user_notice(events.ddb, events.table)}", file=sys.stderr)
    return events


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
    events = _events_by_user(args.stack_name)
    from xrelay.storage.store import iso

    rows = [(iso(r.occurred_at or r.received_at), r.source.value, r.event_type, r.event_key)
            for r in events.by_user(args.user, limit=args.limit)]
    _table(("when", "source", "type", "key"), rows)
    return 0


def cmd_events_quarantine(args: argparse.Namespace) -> int:
    _, state = _stores(args.stack_name)
    rows = []
    for q in state.quarantined(include_done=args.all):
        reason = q["reason"]
        if q["status"] == "discarded":
            reason = f"discarded by {q.get('discarded_by')} at {q.get('discarded_at')}: {q.get('discard_reason')}"
        rows.append((q["received_at"], q["status"], q["delivery_id"][:16], reason))
    _table(("received", "status", "delivery", "reason"), rows)
    return 0


def _add_reason_and_by(parser: Any, reason_help: str) -> None:
    """The two discard commands keep who gave something up, and why."""
    parser.add_argument("--reason", required=True, help=reason_help)
    parser.add_argument("--by", default=None, help="who discards it (default: your user name on this machine)")


def _who(by: str | None) -> str:
    """``--by``, else this machine's user name; a container user without one gets a usage line, not a KeyError."""
    import getpass

    try:
        return by or getpass.getuser()
    except (KeyError, OSError):
        raise CliError("no user name on this machine to keep as who discarded it: give --by NAME") from None


def cmd_events_discard(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    _, state = _stores(args.stack_name)
    pending = [q["delivery_id"] for q in state.quarantined() if q["delivery_id"].startswith(args.delivery)]
    if len(pending) != 1:
        what = "no pending quarantined delivery" if not pending else f"{len(pending)} pending deliveries"
        raise CliError(f"{what} starts with {args.delivery!r}: `xrelay events quarantine` lists them"
                       + (" (give more of the id)" if pending else ""))
    by = _who(args.by)
    if not state.discard_quarantined(pending[0], by, args.reason, datetime.now(UTC)):
        raise CliError(f"delivery {pending[0][:16]} is no longer pending (reprocessed or discarded meanwhile)", 1)
    print(f"discarded {pending[0][:16]} (by {by}: {args.reason}); kept on record: `xrelay events quarantine --all`")
    return 0


def cmd_events_reprocess(args: argparse.Namespace) -> int:
    from aws_lambda_powertools import Logger, Metrics

    from xrelay.events.normalize import delivery_id
    from xrelay.receiving.intake import Intake, NestedTooDeep, parse_delivery

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


def _when(text: str):
    """ISO 8601 (UTC unless it says) or a duration back from now, as `events tail --since` takes."""
    from xrelay.tools.operate.ops import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_events_republish(args: argparse.Namespace) -> int:
    import logging
    from datetime import UTC, datetime

    from xrelay.aws import client
    from xrelay.tools.cli.stack import Stack
    from xrelay.tools.operate.repair import republish, republish_failed_batches

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


# ---------------------------------------------------------------------------- events set-aside (list, discard)


def _add_set_aside_parsers(esub: Any) -> None:
    e = esub.add_parser("set-aside", help="records the publisher set aside: they can never be published as they are")
    ssub = e.add_subparsers(dest="set_aside_command", required=True)
    s = ssub.add_parser("list", help="the set-aside notes on the publisher's failure queue (key, why, when)")
    s.add_argument("--discarded", action="store_true", help="the notes given up so far instead, who and why")
    s.add_argument("--json", action="store_true", help="one note per line as JSON")
    s.set_defaults(func=cmd_set_aside_list)
    s = ssub.add_parser("discard", help="give a note up: deleted from the queue, kept on record (who, why)")
    s.add_argument("note", help="its id, or a prefix of it as `set-aside list` shows")
    _add_reason_and_by(s, "what was done about the record (kept with it)")
    s.set_defaults(func=cmd_set_aside_discard)


def cmd_set_aside_list(args: argparse.Namespace) -> int:
    from xrelay.aws import client
    from xrelay.tools.cli.stack import Stack
    from xrelay.tools.operate.set_aside import discarded, notes

    _, state = _stores(args.stack_name)
    if args.discarded:
        for item in discarded(state.ddb, state.table):
            print(json.dumps(item) if args.json else f"{item['sk'][:12]}  {item['discarded_at']}  "
                  f"{item['event_key']}  by {item['discarded_by']}: {item['discard_reason']}")
        return 0
    found = notes(client("sqs"), Stack(args.stack_name).queue_url("PublishFailuresQueue"))
    for note in found:
        print(note.model_dump_json() if args.json else f"{note.id[:12]}  {note.set_aside_at or '-'}  "
              f"{note.event_key}  ({note.table or '?'}): {note.reason}")
    if not args.json:
        print(f"{len(found)} set-aside note(s); each record is stored under its key: `xrelay events set-aside "
              "discard ID --reason WHY` once dealt with")
    return 0


def cmd_set_aside_discard(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from xrelay.aws import client
    from xrelay.tools.cli.stack import Stack
    from xrelay.tools.operate.set_aside import NoteNotFound, discard

    _, state = _stores(args.stack_name)
    by = _who(args.by)
    try:
        note = discard(client("sqs"), Stack(args.stack_name).queue_url("PublishFailuresQueue"), state.ddb,
                       state.table, args.note, by=by, why=args.reason, at=datetime.now(UTC))
    except NoteNotFound as exc:
        raise CliError(str(exc)) from None
    print(f"discarded the note on {note.event_key} (by {by}: {args.reason}); kept on record: "
          "`xrelay events set-aside list --discarded`")
    return 0


# ---------------------------------------------------------------------------- day-2: events tail, dlq redrive


def _add_ops_parsers(sub: Any, esub: Any) -> None:
    e = esub.add_parser("tail", help="follow new events in the store (never takes the consumers' messages)")
    e.add_argument("--type", action="append", dest="types", metavar="TYPE", help="only this event type (repeatable)")
    e.add_argument("--user", help="only this subscribed user's events (reads the ByUser index; "
                                  "with UserIndex=false, scans the table)")
    e.add_argument("--since", default="5m",
                   help="ISO 8601 UTC or a duration back from now, e.g. 10m, 2h (default 5m)")
    e.add_argument("--once", action="store_true", help="print what is there and exit")
    e.add_argument("--interval", type=seconds, default=2.0, help="seconds between polls (default 2)")
    e.add_argument("--json", action="store_true", help="one event record per line (the queue's JSON)")
    e.set_defaults(func=cmd_events_tail)
    p = sub.add_parser("dlq", help="the events dead-letter queue")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    d = dsub.add_parser("redrive", help="move the events DLQ's messages back to the events queue")
    d.add_argument("--max", type=at_least_one, dest="max_messages", metavar="N",
                   help="move at most N (copies them: a move task cannot be bounded)")
    d.add_argument("--copy", action="store_true",
                   help="receive, send and delete instead of SQS's StartMessageMoveTask")
    d.add_argument("--no-wait", dest="wait", action="store_false", help="start the move task and return")
    d.add_argument("--json", action="store_true", help="the result as JSON on stdout (progress goes to stderr)")
    d.set_defaults(func=cmd_dlq_redrive)


def cmd_events_tail(args: argparse.Namespace) -> int:
    from xrelay.tools.operate.ops import TAIL_HEADER, EventTail, parse_since, tail_json, tail_line

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"xrelay: --since: {exc}", file=sys.stderr)
        return 2
    events = _events_by_user(args.stack_name) if args.user else _stores(args.stack_name)[0]
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
    from xrelay.aws import client
    from xrelay.tools.cli.stack import Stack
    from xrelay.tools.operate.ops import redrive

    _aws_env()
    stack = Stack(args.stack_name)
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

    from xrelay.subscriptions.desired import DesiredStateError, load_desired

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
          f"{_count(len(desired.account_activity), 'AAA user')}, "
          f"{_count(len(desired.activity), 'XAA subscription')}, "
          f"prune {'on' if desired.prune else 'off (report only)'}")
    return 0


def _stack_settings(stack_name: str):
    """Settings for a run from this machine: the stack's resources and Parameters, found by name."""
    from xrelay.config import Settings
    from xrelay.tools.cli.stack import Stack

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
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.reconcile import rows_for_status, run_for_stack

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
    from datetime import UTC, datetime, timedelta

    from xrelay.recovery.outages import Ledger

    if args.start is None or args.end is None:
        print("xrelay: replay needs --from and --to (or `xrelay replay status`)", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    if args.end > now + timedelta(minutes=1):  # X replays what it attempted: nothing yet after now
        raise CliError(f"--to {args.end:%Y-%m-%dT%H:%M:%SZ} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ}): "
                       "declare an outage once it is over, or up to now")
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
    from xrelay.recovery.replay import ledger_status

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
               [(i.source, _cut(i.ref, 40), i.from_, i.to or "(open)", i.status, i.minutes, i.recovered_minutes,
                 i.pending_minutes, i.lost_minutes, ",".join(i.job_ids) or "-") for i in status.intervals])
    if status.jobs:
        print()
        _table(("JOB", "FROM_DATE", "TO_DATE", "SUBMITTED", "STATUS", "X SAYS", "RESUBMITS"),
               [(j.job_id, j.from_date or "?", j.to_date or "?", j.submitted_at or "?", j.status,
                 j.x_description or "-", ",".join(j.resubmission_of) or "-") for j in status.jobs])
    if status.lost:
        print("\nlost beyond X's 24-hour horizon: " + "; ".join(f"{a} to {b}" for a, b in status.lost))
    return 0


# The JSON Schemas of what xrelay prints with --json, by name (docs/schemas/<name>.schema.json);
# "event-record" is the consumers' record (docs/event-record.schema.json). module:attribute of a
# pydantic model, imported only when asked for.
COMMAND_SCHEMAS = {
    "dlq-redrive": "xrelay.tools.operate.ops:RedriveResult",
    "doctor": "xrelay.tools.operate.doctor:DoctorReport",
    "env": "xrelay.tools.cli.consumer_env:ConsumerEnv",
    "replay-status": "xrelay.recovery.replay:LedgerStatus",
    "status": "xrelay.tools.operate.status:StatusReport",
    "teardown": "xrelay.tools.operate.teardown:TeardownResult",
}


def cmd_env(args: argparse.Namespace) -> int:
    from xrelay.tools.cli.consumer_env import gather
    from xrelay.tools.cli.stack import Stack

    _aws_env()
    env = gather(Stack(args.stack_name), _session["target"], _session["account"], _session["region"] or "us-east-1")
    print(env.model_dump_json(indent=2) if args.json else env.shell())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.name == "event-record":
        from xrelay.events.models import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    import importlib

    module, attribute = COMMAND_SCHEMAS[args.name].split(":")
    model = getattr(importlib.import_module(module), attribute)
    # Serialization mode: these describe what the commands print (computed fields included).
    print(json.dumps(model.model_json_schema(by_alias=True, mode="serialization"), indent=2))
    return 0


TABLE_CELL_MAX = 100  # a longer cell is cut, and says so with an ellipsis


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    rows = [tuple(_cut(str(c), TABLE_CELL_MAX) for c in row) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_teardown(args: argparse.Namespace) -> int:
    from contextlib import redirect_stdout

    from xrelay.tools.operate.teardown import (
        Outcome,
        TeardownResult,
        conclusion,
        notes,
        progress_line,
        rows,
        run_for_stack,
    )

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

    settings = _stack_settings(args.stack_name)  # no such stack: exit 2 (cli_errors)
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
    from xrelay.tools.operate.status import gather, render

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
