"""Read ``template.yaml`` the way CloudFormation does, for the local stack and the CLI.

The local stack builds its tables and queues *from the template itself* (no second, hand-kept
list), and ``xrelay local``/``xrelay invoke`` give each function the environment the template
gives it. This module loads the YAML (short-form intrinsics included) and resolves the handful
of intrinsics the environment uses: Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Join,
Fn::Select, Fn::Split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TAGS = ("Ref", "Condition")
_FN_TAGS = ("GetAtt", "Sub", "If", "Equals", "Not", "And", "Or", "Join", "Select", "Split", "FindInMap",
            "GetAZs", "ImportValue", "Base64", "Cidr", "Length", "ToJsonString")


def load(path: str | Path) -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def make(tag: str):
        key = tag if tag in _TAGS else f"Fn::{tag}"

        def construct(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if tag == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {key: value}

        return construct

    for tag in _TAGS + _FN_TAGS:
        Loader.add_constructor(f"!{tag}", make(tag))
    return yaml.load(Path(path).read_text(), Loader=Loader)


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    values = {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values.update(overrides)
    return values


class Resolver:
    """Resolves intrinsics given parameter values and a way to look resources up."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str],
                 ref: Callable[[str], str], get_att: Callable[[str, str], str], region: str = "us-east-1",
                 stack_name: str = "xrelay"):
        self.template = template
        self.parameters = {**parameters, "AWS::Region": region, "AWS::URLSuffix": "amazonaws.com",
                           "AWS::Partition": "aws", "AWS::AccountId": "123456789012",
                           "AWS::StackName": stack_name}
        self._ref = ref
        self._get_att = get_att

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        (key, arg), = value.items()
        if key == "Ref":
            return self.parameters[arg] if arg in self.parameters else self._ref(arg)
        if key == "Fn::GetAtt":
            return self._get_att(arg[0], arg[1])
        if key == "Fn::If":
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if key == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(v) for v in arg)
        if key == "Fn::Or":
            return any(self.resolve(v) for v in arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Join":
            return arg[0].join(str(self.resolve(v)) for v in arg[1])
        if key == "Fn::Split":
            return str(self.resolve(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self.resolve(arg[1])[int(arg[0])]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(match: re.Match) -> str:
                name = match.group(1)
                if name in extra:
                    return str(self.resolve(extra[name]))
                if "." in name:
                    return str(self._get_att(*name.split(".", 1)))
                return str(self.resolve({"Ref": name}))

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {key: self.resolve(arg)}

    def function_environment(self, logical_id: str) -> dict[str, str]:
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in {**globals_env, **own}.items()}


    def function_layers(self, logical_id: str) -> list[str]:
        """The logical ids of the layers ``logical_id`` attaches, in order (the Globals' first, as SAM
        merges them); an ``!If`` that resolves to ``AWS::NoValue`` attaches none."""
        globals_layers = self.template.get("Globals", {}).get("Function", {}).get("Layers", [])
        own = self.template["Resources"][logical_id]["Properties"].get("Layers", [])
        attached = []
        for layer in [*globals_layers, *own]:
            while isinstance(layer, dict) and "Fn::If" in layer:
                condition, when_true, when_false = layer["Fn::If"]
                layer = when_true if self.condition(condition) else when_false
            if layer != {"Ref": "AWS::NoValue"}:
                attached.append(layer["Ref"])
        return attached


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"}


def http_routes(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(METHOD, path, function logical id) for every HttpApi event in the template."""
    routes = []
    for name, res in functions(template).items():
        for event in res["Properties"].get("Events", {}).values():
            if event["Type"] in ("HttpApi", "Api"):
                routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], name))
    return routes


def stream_sources(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function logical id, table logical id, event properties) for every DynamoDB stream trigger."""
    found = []
    for name, res in functions(template).items():
        for event in res["Properties"].get("Events", {}).values():
            if event["Type"] == "DynamoDB":
                stream = event["Properties"]["Stream"]
                found.append((name, stream["Fn::GetAtt"][0], event["Properties"]))
    return found


def schedules(template: dict[str, Any], parameters: dict[str, str]) -> list[tuple[str, str, str]]:
    """(function logical id, event name, schedule expression) for every Schedule event, Refs resolved."""
    found = []
    for name, res in functions(template).items():
        for event_name, event in res["Properties"].get("Events", {}).items():
            if event["Type"] == "Schedule":
                expression = event["Properties"]["Schedule"]
                if isinstance(expression, dict) and "Ref" in expression:
                    expression = parameters[expression["Ref"]]
                found.append((name, event_name, str(expression)))
    return found


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of an EventBridge ``rate(...)`` expression; None for ``cron(...)``."""
    import re

    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return None
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit
