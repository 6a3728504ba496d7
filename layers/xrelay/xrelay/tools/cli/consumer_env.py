"""``xrelay env``: what a consumer needs to read a stack's events, local or deployed.

The values come from the stack's Outputs (the local stack has them too), so a consumer never
matches queue names. For the local emulator it adds the endpoint and the throwaway credentials
moto accepts (the CLI injects them only for itself); for a deployed stack, none: the consumer
uses its own AWS credentials.
"""

from __future__ import annotations

import shlex

from pydantic import BaseModel, Field

from xrelay.tools.cli.stack import Stack
from xrelay.tools.cli.target import Target

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Output key -> the variable a consumer reads it from (examples/consumer.py, docs/event-record.md).
OUTPUT_VARIABLES = {
    "EventsQueueUrl": "XRELAY_EVENTS_QUEUE_URL",
    "EventsDLQUrl": "XRELAY_EVENTS_DLQ_URL",
    "EventsTableName": "XRELAY_EVENTS_TABLE",
    "StateTableName": "XRELAY_STATE_TABLE",
    "WebhookUrl": "XRELAY_WEBHOOK_URL",
}
QUEUE_OUTPUTS = {"EventsQueueUrl": "EventsQueue", "EventsDLQUrl": "EventsDLQ"}


class ConsumerEnv(BaseModel):
    """What `xrelay env --json` prints."""

    stack: str
    target: str = Field(description="local (the emulator) or aws")
    account: str | None = Field(None, description="the AWS account of a deployed stack")
    region: str
    endpoint_url: str | None = Field(None, description="AWS_ENDPOINT_URL for the local emulator; null on AWS")
    variables: dict[str, str] = Field(description="environment variables for a consumer, as `xrelay env` exports")
    outputs: dict[str, str] = Field(description="the stack's Outputs (queue URLs as the endpoint answers them)")

    def shell(self) -> str:
        lines = [f"# xrelay stack {self.stack!r}: "
                 + (f"the local emulator at {self.endpoint_url}" if self.target == "local"
                    else f"AWS account {self.account}, region {self.region} (your own credentials)"),
                 "# eval \"$(xrelay env)\" to use it in this shell"]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in self.variables.items()]
        return "\n".join(lines)


def gather(stack: Stack, target: Target, account: str | None, region: str) -> ConsumerEnv:
    from xrelay.aws import client

    described = client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    for key, logical in QUEUE_OUTPUTS.items():
        if target.local and logical in stack.resources:
            outputs[key] = stack.queue_url(logical)  # the host the emulator answers with, not AWS's
    for key, logical in (("EventsTableName", "EventsTable"), ("StateTableName", "StateTable")):
        outputs.setdefault(key, stack.physical(logical))  # a stack made before it had Outputs
    variables: dict[str, str] = {}
    if target.local:
        variables.update(AWS_ENDPOINT_URL=target.endpoint or "", **LOCAL_CREDENTIALS)
    variables["AWS_DEFAULT_REGION"] = region
    variables["XRELAY_STACK"] = stack.name
    variables.update({OUTPUT_VARIABLES[k]: v for k, v in outputs.items() if k in OUTPUT_VARIABLES})
    return ConsumerEnv(stack=stack.name, target="local" if target.local else "aws", account=account, region=region,
                       endpoint_url=target.endpoint if target.local else None, variables=variables, outputs=outputs)
