"""What each function's role grants, read from template.yaml as IAM would assemble it.

A function's permissions are its role's inline policies plus every ``AWS::IAM::Policy`` attached
to that role whose Condition holds, with ``!If``/``!Sub``/``!Ref`` resolved for the given
Parameter values (resources appear as ``ref:Name`` and ``Name.Attribute``).
"""

from __future__ import annotations

from typing import Any

from conftest import ROOT
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
APP_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:xrelay/x-app-AbCdEf"
NO_VALUE = object()


def resolver(**parameters: str) -> tpl.Resolver:
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": APP_SECRET, **parameters})
    return tpl.Resolver(TEMPLATE, values, ref=lambda name: NO_VALUE if name == "AWS::NoValue" else f"ref:{name}",
                        get_att=lambda name, attribute: f"{name}.{attribute}")


def drop_no_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_no_value(v) for k, v in value.items() if v is not NO_VALUE}
    if isinstance(value, list):
        return [drop_no_value(v) for v in value if v is not NO_VALUE]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(function: str) -> str:
    role = RESOURCES[function]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}, f"{function}: role not from this template"
    return role["Fn::GetAtt"][0]


def attached_policies(role: str, **parameters: str) -> list[str]:
    """The AWS::IAM::Policy resources attached to ``role`` that exist with these Parameters."""
    r = resolver(**parameters)
    return [name for name, res in RESOURCES.items()
            if res["Type"] == "AWS::IAM::Policy" and f"ref:{role}" in drop_no_value(r.resolve(res["Properties"]["Roles"]))
            and ("Condition" not in res or r.condition(res["Condition"]))]


def deployed_with(function: str) -> dict[str, str]:
    """The Endpoint under which ``function`` exists (WebhookFunction: FunctionUrl; the others: HttpApi or any)."""
    condition = RESOURCES[function].get("Condition")
    for endpoint in TEMPLATE["Parameters"]["Endpoint"]["AllowedValues"]:
        if condition is None or resolver(Endpoint=endpoint).condition(condition):
            return {"Endpoint": endpoint}
    raise AssertionError(f"{function} exists under no Endpoint")


def statements(function: str, **parameters: str) -> list[dict[str, Any]]:
    """The role's statements with these Parameters, under the Endpoint the function exists with."""
    parameters = {**deployed_with(function), **parameters}
    r = resolver(**parameters)
    role = role_of(function)
    assert "Condition" not in RESOURCES[role] or r.condition(RESOURCES[role]["Condition"]), f"{role} absent"
    found: list[dict[str, Any]] = []
    for policy in RESOURCES[role]["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    for name in attached_policies(role, **parameters):
        found.extend(RESOURCES[name]["Properties"]["PolicyDocument"]["Statement"])
    return drop_no_value(r.resolve(found))


def grants(function: str, **parameters: str) -> dict[str, set[str]]:
    """action -> the resources it is granted on (conditions ignored: see ``statements``)."""
    out: dict[str, set[str]] = {}
    for statement in statements(function, **parameters):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            out.setdefault(action, set()).update(as_list(statement["Resource"]))
    return out
