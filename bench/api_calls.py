"""Bench section 3: AWS API calls per event, against moto (``mock_aws``, the template's tables and queues as in
tests/conftest.py), counted at ``BaseClient._make_api_call`` by operation (API calls as the code
issues them; botocore retries below that are not counted, and moto never throttles). Request
path = calls made inside IntakeFunction while handling the POST; async path = calls made inside
PublisherFunction invocations driven by the stream (``stack.drain()``). The stream reads of the
event source mapping itself (GetRecords, GetShardIterator) are Lambda's, not the functions', and
are left out. The Secrets Manager read happens on the first POST only and is reported apart.

Alone: ``.venv/bin/python bench/api_calls.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    FIXTURES,
    ROOT,
    quiet_stdout,
    table,
)


class CallCounter:
    """Every botocore API call, tagged with the function being invoked (None: harness or Lambda's poller)."""

    def __init__(self) -> None:
        self.scope: str | None = None
        self.calls: list[tuple[str | None, str, str, dict[str, Any]]] = []
        self.invocations: Counter = Counter()

    def take(self) -> tuple[list[tuple[str | None, str, str, dict[str, Any]]], Counter]:
        calls, invocations = self.calls, self.invocations
        self.calls, self.invocations = [], Counter()
        return calls, invocations


def ten_tweet_delivery() -> bytes:
    """An AAA delivery of 10 distinct tweets (XAA carries one event per delivery, so AAA it is)."""
    doc = json.loads((FIXTURES / "aaa" / "tweet_create.json").read_bytes())
    template = doc["tweet_create_events"][0]
    base = int(template["id_str"]) + 1000  # distinct from the 1-event fixture's tweet
    doc["tweet_create_events"] = [{**template, "id": base + i, "id_str": str(base + i), "text": f"tweet {i}"}
                                  for i in range(10)]
    return json.dumps(doc).encode()


def deletion_of_the_stored_post() -> bytes:
    """xaa/02_post.delete.json naming xaa/01's post, which the first scenario stored: intake writes the
    tombstone too; the publisher redacts the copy and sends the compliance message (xrelay.publishing.compliance)."""
    stored = json.loads((FIXTURES / "xaa" / "01_post.create.json").read_bytes())
    doc = json.loads((FIXTURES / "xaa" / "02_post.delete.json").read_bytes())
    doc["data"]["payload"]["id"] = stored["data"]["payload"]["id"]
    return json.dumps(doc).encode()


def summarise(calls: list[tuple[str | None, str, str, dict[str, Any]]], function: str) -> dict[str, Any]:
    mine = [(service, op, params) for scope, service, op, params in calls if scope == function]
    secrets = [c for c in mine if c[0] == "secretsmanager"]
    counted = [c for c in mine if c[0] != "secretsmanager"]
    messages = sum(len(p.get("Entries", [])) if op == "SendMessageBatch" else 1
                   for service, op, p in counted if service == "sqs" and op.startswith("SendMessage"))
    return {
        "calls": len(counted),
        "by_operation": dict(sorted(Counter(f"{s}.{op}" for s, op, _ in counted).items())),
        "secrets_calls": len(secrets),
        "sqs_messages": messages,
    }


def measure_api_calls() -> dict[str, Any]:
    import botocore.client
    from moto import mock_aws

    from xrelay.aws import client
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign
    from xrelay.tools.local.local import DEV_CONSUMER_SECRET, LocalStack, api_event

    counter = CallCounter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        counter.calls.append((counter.scope, self.meta.service_model.service_name, operation_name, api_params))
        return original(self, operation_name, api_params)

    class CountingStack(LocalStack):
        def invoke(self, function: str, event: dict[str, Any]) -> Any:
            counter.invocations[function] += 1
            outer, counter.scope = counter.scope, function
            try:
                return super().invoke(function, event)
            finally:
                counter.scope = outer

    def post(stack: CountingStack, body: bytes) -> dict[str, Any]:
        event = api_event("POST", "/webhook", "", {"content-type": "application/json",
                                                   SIGNATURE_HEADER: sign(DEV_CONSUMER_SECRET, body)}, body)
        result = stack.invoke("IntakeFunction", event)
        if result["statusCode"] != 200:
            raise RuntimeError(f"intake answered {result['statusCode']}: {result['body']}")
        return json.loads(result["body"])

    scenarios = [
        ("XAA 1 event (post.create)", (FIXTURES / "xaa" / "01_post.create.json").read_bytes()),
        ("AAA 1 event (tweet_create)", (FIXTURES / "aaa" / "tweet_create.json").read_bytes()),
        ("AAA 10 events (tweet_create x10)", ten_tweet_delivery()),
        ("XAA 1 event, redelivered", (FIXTURES / "xaa" / "01_post.create.json").read_bytes()),
        ("AAA 10 events, redelivered", ten_tweet_delivery()),
        ("XAA 1 deletion of a stored post", deletion_of_the_stored_post()),
    ]
    results: dict[str, Any] = {"scenarios": []}
    botocore.client.BaseClient._make_api_call = counting
    try:
        with quiet_stdout(), mock_aws():
            client.cache_clear()
            stack = CountingStack(ROOT, "xrelay-bench")
            stack.provision()
            for function in ("IntakeFunction", "PublisherFunction"):
                stack.module(function)  # Lambda's init: the app module, under the function's environment
            stack.drain()  # open the stream iterators (the event source mapping's own setup)
            counter.take()

            # First POST of the sandbox: the only one that reads the secret (cached 300 s after).
            post(stack, (FIXTURES / "aaa" / "favorite.json").read_bytes())
            first_calls, _ = counter.take()
            results["first_post_secrets_calls"] = summarise(first_calls, "IntakeFunction")["secrets_calls"]
            results["first_post_secret_operations"] = sorted({op for _, service, op, _ in first_calls
                                                              if service == "secretsmanager"})
            stack.drain()
            warm_up_messages = summarise(counter.take()[0], "PublisherFunction")["sqs_messages"]

            for name, body in scenarios:
                answer = post(stack, body)
                request_calls, _ = counter.take()
                stack.drain()
                async_calls, invocations = counter.take()
                request = summarise(request_calls, "IntakeFunction")
                publisher = summarise(async_calls, "PublisherFunction")
                events = answer["events"]
                results["scenarios"].append({
                    "name": name, "events": events, "new": answer["new"], "duplicates": answer["duplicates"],
                    "request": request, "async": publisher,
                    "publisher_invocations": invocations["PublisherFunction"],
                    "request_calls_per_event": request["calls"] / events,
                    "async_calls_per_event": publisher["calls"] / events,
                    "total_calls_per_event": (request["calls"] + publisher["calls"]) / events,
                    "sqs_messages_per_event": publisher["sqs_messages"] / events,
                })

            # Cross-check the message count against the queue itself.
            sqs = client("sqs")
            queue_attrs = sqs.get_queue_attributes(QueueUrl=stack.stack.queue_url("EventsQueue"),
                                                   AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            results["queue_messages"] = int(queue_attrs["ApproximateNumberOfMessages"])
            results["counted_messages"] = warm_up_messages + sum(s["async"]["sqs_messages"]
                                                                 for s in results["scenarios"])
            client.cache_clear()
    finally:
        botocore.client.BaseClient._make_api_call = original
    return results


def render(results: dict[str, Any]) -> list[str]:
    """Section 3 of the report, from ``results["api_calls"]``."""
    out: list[str] = []
    calls = results["api_calls"]
    out.append("3. AWS API calls per event (moto; request = IntakeFunction, async = PublisherFunction via the stream)")
    rows, operations = [], []
    for s in calls["scenarios"]:
        rows.append([s["name"], s["events"], f"{s['new']}/{s['duplicates']}",
                     f"{s['request']['calls']} ({s['request_calls_per_event']:.2f})", s["publisher_invocations"],
                     f"{s['async']['calls']} ({s['async_calls_per_event']:.2f})", f"{s['total_calls_per_event']:.2f}",
                     s["async"]["sqs_messages"]])
        by_operation = Counter(s["request"]["by_operation"]) + Counter(s["async"]["by_operation"])
        operations.append(f"   {s['name']}: " + (", ".join(f"{op} x{n}" for op, n in sorted(by_operation.items()))
                                                  or "-"))
    out.append(table(["delivery", "events", "new/dup", "request calls (/ev)", "publisher runs",
                      "async calls (/ev)", "calls/ev", "SQS msgs"], rows))
    out.extend(operations)
    out.append(f"   first call only: the first POST of a sandbox reads the secret "
               f"({calls['first_post_secrets_calls']} call: {', '.join(calls['first_post_secret_operations'])}); "
               f"warm POSTs read it again only after SECRET_CACHE_SECONDS (300 s). Excluded above.")
    out.append("   XAA carries one event per delivery, so the 10-event delivery is AAA. Stream reads by the event "
               "source mapping (GetRecords) are not counted.")
    out.append(f"   SQS check: {calls['counted_messages']} messages counted in SendMessageBatch entries, "
               f"{calls['queue_messages']} on the queue.")

    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()  # --help
    print("\n".join(render({"api_calls": measure_api_calls()})))


if __name__ == "__main__":
    main()
