"""ReplayFunction as deployed: the template's handler, environment and rule, X over real HTTP.

The end-to-end test plays an outage through the local stack: X's deliveries fail while DynamoDB
does, the intake alarm's state changes reach the function, the function asks the fake X for a
replay, and the fake re-delivers what it attempted during the outage, interleaved with live
redeliveries. Every event ends up stored and queued exactly once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from conftest import ROOT, apply_desired
from conftest import WEBHOOK_URL as URL
from helpers import client_error, emf, post, published_keys, stored_keys, values
from xrelay.events.normalize import normalize
from xrelay.recovery.outages import Ledger, ceil_minute, floor_minute
from xrelay.recovery.replay import LedgerStatus
from xrelay.storage.store import StateStore
from xrelay.tools.cli.cli import main
from xrelay.tools.local.samples import load_event

ALARM = "xrelay-IntakeUnavailableAlarm-1QW2ER3TY4UI"


def sample(name: str, now: datetime | None = None) -> dict:
    return load_event(ROOT / "events" / f"{name}.json", now)


def alarm_event(state: str, at: datetime) -> dict:
    """The sample EventBridge alarm event, moved to ``at``."""
    event = sample("ReplayFunction-alarm" if state == "ALARM" else "ReplayFunction-ok")
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"]["state"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return event


@pytest.fixture
def declared(fake_x, stack, tmp_path):
    """A desired webhook, registered at X and seen valid by the reconcile (its id is then known)."""
    apply_desired(tmp_path, f"webhook:\n  url: {URL}\n")
    result = stack.invoke("ReconcileFunction", sample("ReconcileFunction"))
    assert result["ok"] and result["webhook_valid"]
    (webhook_id,) = fake_x.webhooks
    return webhook_id


def replay_requests(fake_x) -> list[dict]:
    return [json.loads(r.body) for r in fake_x.requests if r.path == "/2/webhooks/replay"]


def test_samples_are_accepted_without_a_webhook_to_replay_to(fake_x, stack):
    result = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert result["ok"] and "WebhookId" in result["idle"] and fake_x.requests == []
    now = datetime.now(UTC).replace(microsecond=183000)  # the samples are dated relative to now
    opened = stack.invoke("ReplayFunction", sample("ReplayFunction-alarm", now))
    start, end = now - timedelta(minutes=20), now - timedelta(minutes=1)
    assert opened["alarm_change"] == {"alarm": ALARM, "state": "ALARM", "at": start.strftime("%Y-%m-%dT%H:%M:%S.183Z"),
                                      "new": True}
    closed = stack.invoke("ReplayFunction", sample("ReplayFunction-ok", now))
    assert closed["alarm_change"]["new"] is True
    (interval,) = Ledger(stack.stack.physical("StateTable")).read().intervals
    assert (interval.source, interval.ref, interval.start, interval.end) == ("alarm", ALARM, start, end)


def test_an_alarm_outage_is_replayed_once_closed_with_the_padded_window_and_x_format(declared, fake_x, stack,
                                                                                       capsys):
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=3), now - timedelta(hours=2, minutes=40)
    capsys.readouterr()
    stack.invoke("ReplayFunction", alarm_event("ALARM", start))
    assert replay_requests(fake_x) == []  # still open, far from the horizon: wait for it to end
    result = stack.invoke("ReplayFunction", alarm_event("OK", end))

    margin = timedelta(minutes=5)  # the ReplayMarginMinutes default
    (body,) = replay_requests(fake_x)
    assert body == {"webhook_id": declared,
                    "from_date": floor_minute(start - margin).strftime("%Y%m%d%H%M"),
                    "to_date": ceil_minute(end + margin).strftime("%Y%m%d%H%M")}
    (job_id,) = fake_x.replay_jobs
    assert result["jobs_started"] == 1 and result["started"][0]["job_id"] == job_id
    blobs = emf(capsys)
    assert values(blobs, "ReplayJobsStarted", service="replay") == [0.0, 1.0]
    assert sum(values(blobs, "OutagesOpened", service="replay")) == 1  # once, by the run that first saw it
    assert values(blobs, "ReplayFailed", service="replay") == [0.0, 0.0]

    # The job runs: the next runs wait for it and ask X nothing.
    fake_x.requests.clear()
    waiting = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert waiting["jobs_started"] == 0 and job_id in waiting["waiting"] and replay_requests(fake_x) == []

    # X reports Complete to the webhook; intake records it; the next run counts it and rests.
    assert post(stack, fake_x.complete_replay(job_id), secret=fake_x.consumer_secret)[0] == 200
    capsys.readouterr()
    done = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert (done["jobs_completed"], done["minutes_unrecovered"], done["waiting"]) == (1, 0, None)
    assert values(emf(capsys), "OutageMinutesUnrecovered", service="replay") == [0.0]
    assert replay_requests(fake_x) == []


def test_an_incomplete_job_is_submitted_again_for_the_same_window(declared, fake_x, stack):
    now = datetime.now(UTC)
    stack.invoke("ReplayFunction", alarm_event("ALARM", now - timedelta(hours=2)))
    first = stack.invoke("ReplayFunction", alarm_event("OK", now - timedelta(hours=1, minutes=50)))
    (job_id,) = [s["job_id"] for s in first["started"]]
    assert post(stack, fake_x.complete_replay(job_id, "Incomplete"), secret=fake_x.consumer_secret)[0] == 200
    again = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert (again["jobs_incomplete"], again["jobs_resubmitted"]) == (1, 1)
    assert [(s["from_date"], s["to_date"]) for s in again["started"]] == [
        (s["from_date"], s["to_date"]) for s in first["started"]]


def test_the_webhook_id_parameter_wins_and_an_unknown_webhook_is_x_s_refusal_not_a_crash(fake_x, stack, tmp_path,
                                                                                          monkeypatch):
    other = fake_x.add_webhook("https://elsewhere.example.com/webhook")
    stack.environment("ReplayFunction")["WEBHOOK_ID"] = other
    now = datetime.now(UTC)
    Ledger(stack.stack.physical("StateTable")).declare(now - timedelta(hours=2), now - timedelta(hours=1))
    result = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert result["webhook_id"] == other and result["jobs_started"] == 1
    assert [body["webhook_id"] for body in replay_requests(fake_x)] == [other]


def test_x_unreachable_is_a_failed_run_but_the_alarm_change_is_kept(declared, fake_x, stack, capsys, monkeypatch):
    stack.environment("ReplayFunction")["X_API_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens there
    now = datetime.now(UTC)
    Ledger(stack.stack.physical("StateTable")).declare(now - timedelta(hours=5), now - timedelta(hours=4))
    capsys.readouterr()
    result = stack.invoke("ReplayFunction", alarm_event("ALARM", now - timedelta(hours=1)))
    assert result["ok"] is False and "TransportError" in result["error"] and result["alarm_change"]["new"]
    assert values(emf(capsys), "ReplayFailed", service="replay") == [1.0]
    assert len(Ledger(stack.stack.physical("StateTable")).read().intervals) == 2


def test_a_ledger_failure_raises_so_that_lambda_retries_the_alarm_change(declared, stack, faults):
    faults.inject("dynamodb", "PutItem", client_error("ProvisionedThroughputExceededException", 400))
    with pytest.raises(Exception, match="failed"):
        stack.invoke("ReplayFunction", alarm_event("ALARM", datetime.now(UTC) - timedelta(hours=1)))
    assert Ledger(stack.stack.physical("StateTable")).read().intervals == []


def test_an_unreadable_alarm_event_is_logged_and_the_scheduled_work_still_runs(declared, stack):
    event = sample("ReplayFunction-alarm")
    del event["detail"]["state"]
    result = stack.invoke("ReplayFunction", event)
    assert result["ok"] and "detail.state" in result["ignored_event"] and "alarm_change" not in result


# --- end to end ------------------------------------------------------------------------------------


def xaa_deliveries(n: int) -> list[bytes]:
    """``n`` XAA deliveries of distinct events (the documented fixtures)."""
    out, keys = [], set()
    for path in sorted((ROOT / "tests" / "fixtures" / "xaa").glob("*.json")):
        body = path.read_bytes()
        result = normalize(json.loads(body), delivery="d", received_at=datetime.now(UTC))
        new_keys = {e.event_key for e in result.events}
        if len(new_keys) == 1 and not new_keys & keys and not result.errors:
            keys |= new_keys
            out.append(body)
        if len(out) == n:
            return out
    raise AssertionError(f"fewer than {n} distinct XAA fixtures")


def key_of(body: bytes) -> str:
    (event,) = normalize(json.loads(body), delivery="d", received_at=datetime.now(UTC)).events
    return event.event_key


def test_events_missed_in_an_outage_arrive_by_replay_among_live_redeliveries_and_land_once(
        declared, fake_x, stack, faults, capsys):
    now = datetime.now(UTC)
    before, missed, during_ok, after, live_later = (lambda b: (b[:2], b[2:6], b[6:7], b[7:9], b[9:10]))(
        xaa_deliveries(10))
    outage_start, outage_end = now - timedelta(hours=3), now - timedelta(hours=2, minutes=30)
    secret = fake_x.consumer_secret

    def deliver(body: bytes, at: datetime) -> int:
        fake_x.attempted(declared, body, at.timestamp())
        return post(stack, body, secret=secret)[0]

    for i, body in enumerate(before):  # well before the outage (outside the padded window)
        assert deliver(body, outage_start - timedelta(minutes=30 - i)) == 200
    # The outage: DynamoDB refuses every write; X's deliveries and its retries get 503 and are dropped.
    faults.inject("dynamodb", "PutItem", client_error("ProvisionedThroughputExceededException", 400),
                  times=len(missed) * 3)
    for i, body in enumerate(missed):
        for attempt in range(3):
            assert deliver(body, outage_start + timedelta(minutes=2 * i, seconds=attempt)) == 503
    # One delivery inside the window got through: the replay will send it again.
    assert deliver(during_ok[0], outage_start + timedelta(minutes=12)) == 200
    for i, body in enumerate(after):
        assert deliver(body, outage_end + timedelta(minutes=20 + i)) == 200
    assert not set(map(key_of, missed)) & set(stored_keys(stack))

    stack.invoke("ReplayFunction", alarm_event("ALARM", outage_start + timedelta(minutes=2)))
    result = stack.invoke("ReplayFunction", alarm_event("OK", outage_end))
    (job_id,) = [s["job_id"] for s in result["started"]]

    # X replays what it attempted in the window, oldest first, while live traffic goes on: redeliveries
    # of events already stored, and a new event.
    replayed = fake_x.replay_deliveries(job_id)
    assert len(replayed) == len(missed) * 3 + 1  # every attempt, the retries too: X resends, we dedupe
    capsys.readouterr()
    live = [*after, *before, live_later[0]]
    for i, body in enumerate(replayed):
        assert post(stack, body, secret=secret)[0] == 200
        if i < len(live):
            assert deliver(live[i], now) == 200
    assert post(stack, fake_x.complete_replay(job_id), secret=secret)[0] == 200
    blobs = emf(capsys)
    assert sum(values(blobs, "EventsRecoveredByReplay", service="intake")) == len(missed)

    stack.drain()
    everything = {key_of(b) for b in [*before, *missed, *during_ok, *after, *live_later]}
    stored = stored_keys(stack)
    assert sorted(stored) == sorted(everything)  # each once
    published = published_keys(stack)
    assert sorted(published) == sorted(everything)  # each queued once

    done = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert (done["jobs_completed"], done["minutes_unrecovered"], done["jobs_started"]) == (1, 0, 0)
    capsys.readouterr()
    assert main(["replay", "status", "--json"]) == 0
    status = LedgerStatus.model_validate_json(capsys.readouterr().out)
    (interval,) = status.intervals
    assert (interval.status, interval.pending_minutes, interval.job_ids) == ("recovered", 0, [job_id])
    assert [(j.job_id, j.status, j.x_state) for j in status.jobs] == [(job_id, "complete", "Complete")]
    assert StateStore(stack.stack.physical("StateTable")).webhook_health(URL)["webhook_id"] == declared


def test_a_run_with_nothing_to_start_reads_no_secret_and_calls_no_one(declared, fake_x, stack):
    from aws_lambda_powertools.utilities.parameters import clear_caches

    from xrelay.aws import client

    client("secretsmanager").delete_secret(SecretId=stack.environment("ReplayFunction")["X_APP_SECRET_ARN"],
                                           ForceDeleteWithoutRecovery=True)
    clear_caches()
    fake_x.requests.clear()
    result = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert result["ok"] and result["webhook_id"] == declared and fake_x.requests == []
    # ... and one that must start a job says what it lacks
    now = datetime.now(UTC)
    Ledger(stack.stack.physical("StateTable")).declare(now - timedelta(hours=3), now - timedelta(hours=2))
    failed = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert failed["ok"] is False and "credentials unavailable" in failed["error"] and fake_x.requests == []
