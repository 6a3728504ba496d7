"""Find a deployed (or local) stack's resources, so nobody types table names or queue URLs.

The same lookup serves AWS and the local stack: ``xrelay local`` creates its tables and queues
as a CloudFormation stack in moto, so ``describe_stack_resources`` answers in both places.
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any

from xrelay.aws import client

DEFAULT_STACK = "xrelay"


def default_stack_name(root: Path | None = None) -> str:
    """``XRELAY_STACK``, else samconfig.toml's default stack_name, else "xrelay"."""
    if os.environ.get("XRELAY_STACK"):
        return os.environ["XRELAY_STACK"]
    path = (root or project_root()) / "samconfig.toml"
    try:
        config = tomllib.loads(path.read_text())
        return config["default"]["global"]["parameters"]["stack_name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return DEFAULT_STACK


def project_root() -> Path:
    """The checkout holding template.yaml (the CLI runs from it, or from anywhere under it)."""
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").exists():
            return candidate
    return Path(__file__).resolve().parents[5]


class Stack:
    def __init__(self, name: str):
        self.name = name

    @cached_property
    def resources(self) -> dict[str, str]:
        cfn = client("cloudformation")
        out: dict[str, str] = {}
        paginator = cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=self.name):
            for res in page["StackResourceSummaries"]:
                out[res["LogicalResourceId"]] = res.get("PhysicalResourceId", "")
        return out

    def physical(self, logical_id: str) -> str:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise LookupError(f"stack {self.name!r} has no resource {logical_id!r}") from None

    def queue_url(self, logical_id: str) -> str:
        # CloudFormation reports the queue's canonical URL; ask SQS so the host matches our endpoint.
        name = self.physical(logical_id).rstrip("/").rsplit("/", 1)[-1]
        return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    def ref(self, logical_id: str) -> str:
        physical = self.physical(logical_id)
        return self.queue_url(logical_id) if physical.startswith("http") else physical

    def get_att(self, logical_id: str, attribute: str) -> Any:
        physical = self.physical(logical_id)
        if physical.startswith("http"):
            attrs = client("sqs").get_queue_attributes(QueueUrl=self.queue_url(logical_id),
                                                       AttributeNames=["QueueArn"])["Attributes"]
            return {"Arn": attrs["QueueArn"], "QueueName": physical.rsplit("/", 1)[-1]}[attribute]
        table = client("dynamodb").describe_table(TableName=physical)["Table"]
        return {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")}[attribute]

    def parameters(self) -> dict[str, str]:
        """The stack's Parameter values as deployed (secret ARNs, the X API base URL, ...)."""
        stacks = client("cloudformation").describe_stacks(StackName=self.name)["Stacks"]
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}

    def output(self, key: str) -> str | None:
        stacks = client("cloudformation").describe_stacks(StackName=self.name)["Stacks"]
        for out in stacks[0].get("Outputs", []):
            if out["OutputKey"] == key:
                return out["OutputValue"]
        return None
