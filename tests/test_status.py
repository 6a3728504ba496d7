"""`xrelay status` against the local stack: healthy, then broken one way at a time.

The reconcile runs as deployed (its handler, the stack's environment) against the strict fake X
served over HTTP; deliveries go through the real intake handler. A deployed stack is stood in for
by moto's CloudWatch (metrics put as the functions' EMF lines would become, an alarm set to ALARM).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from conftest import ALICE, ROOT, fixture_bytes
from conftest import WEBHOOK_URL as URL
from helpers import client_error, post
from test_command_schemas import validate
from xrelay.aws import client
from xrelay.recovery.outages import ALARM_SOURCE, Ledger
from xrelay.storage.store import StateStore
from xrelay.subscriptions.users import StoredUser, UserCredentialStore
from xrelay.tools.cli.cli import main
from xrelay.tools.operate import status
from xrelay.tools.operate.status import StatusReport, gather, scheduled_runs


def state(stack) -> StateStore:
    return StateStore(stack.stack.physical("StateTable"))


def reconcile(stack) -> dict:
    return stack.invoke("ReconcileFunction", json.loads((ROOT / "events" / "ReconcileFunction.json").read_text()))


def authorize_alice(stack, fake_x) -> None:
    UserCredentialStore("xrelay").put(StoredUser(ALICE, fake_x.register_oauth1_user(ALICE)))
    state(stack).mark_authorized(ALICE, datetime.now(UTC))


@pytest.fixture
def healthy(wired, fake_x):
    """Subscriptions in place (a second run found nothing to change) and events received from X."""
    authorize_alice(wired, fake_x)
    assert reconcile(wired)["created"] == 2
    assert reconcile(wired)["drift"] == 0
    new = {}
    for source, name in (("xaa", "xaa/00_post.create.json"), ("aaa", "aaa/favorite.json")):
        code, body = post(wired, fixture_bytes(name), secret=fake_x.consumer_secret)
        assert code == 200
        new[source] = body["new"]
    wired.drain()
    wired.new_events = new
    return wired


def run_status(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def status_json(capsys, *args: str) -> tuple[int, StatusReport]:
    code, out, _ = run_status(capsys, "--json", *args)
    validate("status", out)
    return code, StatusReport.model_validate_json(out)


def problem(report: StatusReport, check: str) -> str:
    """The one problem of ``check``, as `xrelay status` prints it (message and action)."""
    found = [f"{p.message} / do: {p.action}" for p in report.problems if p.check == check]
    assert len(found) == 1, report.problems
    return found[0]


# --- healthy ---------------------------------------------------------------------------------------


def test_a_healthy_local_stack_exits_0_and_says_where_each_figure_comes_from(healthy, capsys):
    code, out, _ = run_status(capsys)
    assert code == 0, out
    assert "nothing needs a person" in out and "NEEDS A PERSON" not in out
    assert "a scan of the local events table" in out and "not evaluated locally" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert "valid, id " in lines["webhook"]
    assert "desired 2, actual 2, drift 0" in lines["subscriptions"]
    assert lines["xaa"].split()[-1] == str(healthy.new_events["xaa"])

    code, report = status_json(capsys)
    assert (code, report.ok, report.problems, report.where) == (0, True, [], "local")
    assert report.webhook.status == "valid" and report.reconcile.last_run.ok and not report.reconcile.stale
    by_source = {s.source: s.last_hour for s in report.events.by_source}
    assert by_source == {"xaa": healthy.new_events["xaa"], "aaa": healthy.new_events["aaa"], "stream": 0}
    assert report.events.method == "local-scan" and not report.events.truncated
    assert [(q.logical_id, q.messages) for q in report.queues if q.logical_id != "EventsQueue"] == [
        ("EventsDLQ", 0), ("PublishFailuresQueue", 0)]
    assert report.users.authorized == [ALICE] and report.users.needing_authorization == []
    assert report.crc.method == "reconcile" and report.crc.last_ok_at == report.webhook.last_valid_at


def test_the_reconcile_records_each_run_for_status(healthy):
    run = state(healthy).last_reconcile_run()
    assert (run["ok"], run["desired"], run["actual"], run["drift"], run["webhook_valid"]) == (True, 2, 2, 0, True)
    assert run["needs_authorization"] == [] and run["rate_limited"] is False
    assert datetime.fromisoformat(run["at"]) > datetime.now(UTC) - timedelta(minutes=1)


# --- broken, one way at a time ---------------------------------------------------------------------


def test_an_invalid_webhook_needs_a_person(healthy, fake_x, capsys):
    (hook,) = fake_x.webhooks.values()
    hook.valid, fake_x.crc_passes = False, False  # X's CRC fails: re-validation cannot fix it
    reconcile(healthy)
    code, out, _ = run_status(capsys)
    assert code == 1
    assert f"PROBLEM  [webhook] webhook {URL} is invalid at X since" in out
    code, report = status_json(capsys)
    assert "WebhookInvalidAlarm" in problem(report, "webhook")
    # The webhook stretch is recorded as an outage: open, so a warning, not a second problem.
    assert [(o.source, o.ended_at) for o in report.outages.intervals] == [("webhook", None)]


# What Lambda sends the publisher's on-failure destination when it gives a stream batch up.
BATCH_FAILURE = json.dumps({"DDBStreamBatchInfo": {
    "approximateArrivalOfFirstRecord": "2026-11-25T08:00:00Z", "approximateArrivalOfLastRecord": "2026-11-25T08:01:00Z",
    "batchSize": 3}})


@pytest.mark.parametrize("queue, body, command", [
    ("EventsDLQ", "{}", "xrelay dlq redrive"),
    ("PublishFailuresQueue", BATCH_FAILURE, "xrelay events republish --from-failures")])
def test_a_message_in_a_failure_queue_needs_a_person(healthy, capsys, queue, body, command):
    client("sqs").send_message(QueueUrl=healthy.stack.queue_url(queue), MessageBody=body)
    code, report = status_json(capsys)
    assert code == 1 and command in problem(report, "queues")


def test_a_quarantined_delivery_needs_a_person(healthy, fake_x, capsys):
    assert post(healthy, fixture_bytes("other/unrecognised_shape.json"), secret=fake_x.consumer_secret)[0] == 200
    code, report = status_json(capsys)
    assert code == 1 and report.quarantine.pending == 1
    assert "xrelay events reprocess" in problem(report, "quarantine")


def test_a_discarded_quarantined_delivery_no_longer_needs_a_person_and_stays_on_record(healthy, fake_x, capsys):
    assert post(healthy, fixture_bytes("other/unrecognised_shape.json"), secret=fake_x.consumer_secret)[0] == 200
    capsys.readouterr()
    assert main(["events", "quarantine"]) == 0
    delivery = capsys.readouterr().out.splitlines()[1].split()[2]  # the 16-character prefix shown
    assert main(["events", "discard", delivery, "--reason", "a test shape X never sends", "--by", "ops"]) == 0
    assert "kept on record" in capsys.readouterr().out
    code, report = status_json(capsys)
    assert report.quarantine.pending == 0 and not [p for p in report.problems if p.check == "quarantine"]
    assert main(["events", "quarantine", "--all"]) == 0
    listed = capsys.readouterr().out
    assert "discarded" in listed and "by ops" in listed and "a test shape X never sends" in listed
    assert main(["events", "discard", delivery, "--reason", "again"]) == 2  # nothing pending by that id
    assert "no pending quarantined delivery" in capsys.readouterr().err


def test_a_declared_user_without_credentials_needs_authorization(wired, capsys):
    reconcile(wired)  # Alice never authorised the app
    code, out, _ = run_status(capsys)
    assert code == 1 and "PROBLEM  [users] declared users the reconcile cannot act for" in out
    _, report = status_json(capsys)
    assert ALICE in problem(report, "users") and "xrelay users authorize" in problem(report, "users")


def test_a_failed_reconcile_needs_a_person(fake_x, monkeypatch, wired, capsys):
    monkeypatch.setenv("X_API_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    assert not reconcile(wired)["ok"]
    code, report = status_json(capsys)
    assert code == 1 and "TransportError" in problem(report, "reconcile")


def test_lost_minutes_need_a_person_until_acknowledged(healthy, capsys):
    now = datetime.now(UTC)
    ledger = Ledger(healthy.stack.physical("StateTable"))
    ledger.declare(now - timedelta(hours=30), now - timedelta(hours=29), reason="maintenance")  # beyond X's reach
    code, report = status_json(capsys)
    (outage,) = report.outages.intervals
    assert code == 1 and outage.lost_minutes > 0 and outage.lost_acknowledged_minutes == 0
    assert f"{outage.lost_minutes} minute(s) lost" in problem(report, "outages")

    code, out, err = run_status(capsys, "--acknowledge-lost")
    assert code == 0, out
    assert f"acknowledged {outage.lost_minutes} lost minute(s)" in err
    code, report = status_json(capsys)
    assert code == 0 and report.outages.intervals[0].lost_acknowledged_minutes == outage.lost_minutes

    ledger.declare(now - timedelta(hours=28), now - timedelta(hours=27, minutes=30))  # another one: not acknowledged
    assert status_json(capsys)[0] == 1


def test_unrecovered_minutes_fail_only_once_the_replay_had_hours_to_cover_them(healthy, capsys):
    now = datetime.now(UTC)
    ledger = Ledger(healthy.stack.physical("StateTable"))
    ledger.declare(now - timedelta(minutes=30), now - timedelta(minutes=20))  # the replay's turn has not come
    ledger.open(ALARM_SOURCE, "xrelay-IntakeUnavailableAlarm-X", now - timedelta(minutes=5), "store failing")
    code, report = status_json(capsys)
    assert code == 0 and report.problems == []
    outage_warnings = " | ".join(w.message for w in report.warnings if w.check == "outages")
    assert "minute(s) waiting for the replay" in outage_warnings and "still open (store failing)" in outage_warnings

    ledger.declare(now - timedelta(hours=6), now - timedelta(hours=5))  # pending for hours: the replay is stuck
    code, report = status_json(capsys)
    assert code == 1 and "still not replayed" in problem(report, "outages")


def test_an_unknown_stack_is_a_usage_error(stack, capsys):
    code, _, err = run_status(capsys, "--stack-name", "no-such-stack")
    assert code == 2 and "no stack 'no-such-stack'" in err


# --- deployed: CloudWatch instead of a scan --------------------------------------------------------


def test_deployed_figures_come_from_cloudwatch_and_alarms_and_the_table_is_never_scanned(healthy, faults):
    now = datetime.now(UTC)
    cw = client("cloudwatch")
    stage = [{"Name": "Stage", "Value": "dev"}]
    intake = [*stage, {"Name": "service", "Value": "intake"}]  # the dimensions intake's EMF lines carry
    cw.put_metric_data(Namespace="xrelay", MetricData=[
        {"MetricName": "EventsReceived", "Timestamp": now - timedelta(minutes=20), "Value": 3,
         "Dimensions": [{"Name": "Source", "Value": "xaa"}, {"Name": "EventType", "Value": "post.create"}, *intake]},
        {"MetricName": "EventsReceived", "Timestamp": now - timedelta(hours=5), "Value": 4,
         "Dimensions": [{"Name": "Source", "Value": "aaa"}, {"Name": "EventType", "Value": "like.create"}, *intake]},
        {"MetricName": "EventsReceived", "Timestamp": now - timedelta(minutes=20), "Value": 5,  # another stage's
         "Dimensions": [{"Name": "Source", "Value": "xaa"}, {"Name": "EventType", "Value": "post.create"},
                        {"Name": "Stage", "Value": "prod"}, {"Name": "service", "Value": "intake"}]},
        {"MetricName": "CrcAnswered", "Timestamp": now - timedelta(hours=2), "Value": 1,
         "Dimensions": [{"Name": "service", "Value": "crc"}, *stage]},
    ])
    cw.put_metric_alarm(AlarmName="xrelay-WebhookInvalidAlarm-1A2B3C", AlarmDescription="X delivers nothing.",
                        Namespace="xrelay", MetricName="WebhookValid", Statistic="Minimum", Period=300,
                        EvaluationPeriods=6, Threshold=1, ComparisonOperator="LessThanThreshold")
    cw.put_metric_alarm(AlarmName="other-stack-Alarm-1", Namespace="xrelay", MetricName="WebhookValid",
                        Statistic="Minimum", Period=300, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="LessThanThreshold")
    for name in ("xrelay-WebhookInvalidAlarm-1A2B3C", "other-stack-Alarm-1"):
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed")
    scans = faults.inject("dynamodb", "Scan", client_error("AccessDeniedException", 400), times=99)

    report = gather("xrelay", deployed=True, now=now)
    assert scans.matched == 0
    assert report.where == "deployed" and report.events.method == "cloudwatch"
    by_source = {s.source: (s.last_received_at is not None, s.last_hour) for s in report.events.by_source}
    assert by_source == {"xaa": (True, 3), "aaa": (True, 0), "stream": (False, 0)}
    assert report.crc.answered_24h == 1 and report.crc.refused_24h == 0
    assert report.crc.last_ok_at <= now - timedelta(hours=2) + timedelta(minutes=5)
    assert [a.name for a in report.alarms.in_alarm] == ["xrelay-WebhookInvalidAlarm-1A2B3C"]
    assert "X delivers nothing." in problem(report, "alarms")


def test_a_reconcile_that_stopped_running_needs_a_person(healthy):
    later = datetime.now(UTC) + timedelta(minutes=16)  # rate(5 minutes): 3 runs missed
    deployed = gather("xrelay", now=later, deployed=True)
    assert "ReconcileFailingAlarm" in problem(deployed, "reconcile")
    local = gather("xrelay", now=later)  # `xrelay local` runs rate() schedules too
    assert "--no-schedules" in problem(local, "reconcile")
    # A cron schedule does not run locally: there, a reconcile nobody ran is only worth knowing.
    by_hand = status.assess(local.model_copy(update={"reconcile": local.reconcile.model_copy(
        update={"schedule": "cron(0 3 * * ? *)", "scheduled_here": False})}))
    assert by_hand.ok and any("runs no cron schedule" in w.message for w in by_hand.warnings)


def test_before_its_first_run_the_reconcile_gets_its_scheduled_chances(wired):
    now = datetime.now(UTC)
    assert [p.check for p in gather("xrelay", now=now, deployed=True).problems] == []
    assert any("no reconcile run is recorded" in w.message for w in gather("xrelay", now=now).warnings)
    late = gather("xrelay", now=now + timedelta(minutes=16), deployed=True)
    assert "no reconcile run is recorded" in problem(late, "reconcile")


# --- schedules -------------------------------------------------------------------------------------


def test_scheduled_runs_counts_rate_and_cron_firings():
    friday_9 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday
    assert scheduled_runs("rate(5 minutes)", friday_9, friday_9 + timedelta(minutes=14), 3) == 2
    assert scheduled_runs("rate(1 hour)", friday_9, friday_9 + timedelta(days=2), 3) == 3
    weekdays = "cron(0 9 ? * MON-FRI *)"
    assert scheduled_runs(weekdays, friday_9, datetime(2026, 11, 30, 8, 59, tzinfo=UTC), 3) == 0  # the weekend
    assert scheduled_runs(weekdays, friday_9, datetime(2026, 12, 2, 9, 0, tzinfo=UTC), 3) == 3  # Mon, Tue, Wed
    assert scheduled_runs("cron(*/10 * * * ? *)", friday_9, friday_9 + timedelta(minutes=25), 9) == 2
    assert scheduled_runs("cron(0 12 L * ? *)", friday_9, friday_9 + timedelta(days=40), 3) is None
