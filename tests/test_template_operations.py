"""template.yaml as operators meet it: alarms, the dashboard, Parameters, Outputs, README, samconfig, build.

Metric names come from ``xrelay.observability.M`` (what the functions emit) and from the template's
own metric filters; a name anywhere else would be a graph or an alarm that never gets a datapoint.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ROOT
from xrelay.observability import M
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
FUNCTIONS = sorted(tpl.functions(TEMPLATE))
ALARMS = sorted(name for name, res in RESOURCES.items() if res["Type"] == "AWS::CloudWatch::Alarm")
README = (ROOT / "README.md").read_text()
PSEUDO_PARAMETERS = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix"}

# Alarms on one-off counts: they return to OK by themselves minutes later, so an OK notification
# would say nothing. Every other alarm watches a state and notifies its recovery too.
ONE_OFF_ALARMS = {"QuarantineAlarm", "OutageMinutesLostAlarm", "ReplayIncompleteAlarm"}
# The Endpoint Parameter: the HTTP API (CrcFunction, IntakeFunction) or WebhookFunction's function URL.
ENDPOINTS = PARAMETERS["Endpoint"]["AllowedValues"]


def mode(endpoint: str) -> tpl.Resolver:
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", "Endpoint": endpoint})
    return tpl.Resolver(TEMPLATE, values, ref=lambda name: f"ref:{name}", get_att=lambda *_: "")


def present(endpoint: str) -> set[str]:
    """The resources CloudFormation creates with this Endpoint (the other Parameters' defaults)."""
    resolver = mode(endpoint)
    return {name for name, res in RESOURCES.items() if "Condition" not in res or resolver.condition(res["Condition"])}


def chosen(node: Any, endpoint: str) -> Any:
    """node with every Fn::If decided as with this Endpoint and AWS::NoValue dropped (other intrinsics kept)."""
    if isinstance(node, list):
        items = [chosen(item, endpoint) for item in node]
        return [item for item in items if item != {"Ref": "AWS::NoValue"}]
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return chosen(yes if mode(endpoint).condition(name) else no, endpoint)
        return {key: chosen(value, endpoint) for key, value in node.items()}
    return node


def metric_filter_metrics() -> set[str]:
    return {t["MetricName"] for res in RESOURCES.values() if res["Type"] == "AWS::Logs::MetricFilter"
            for t in res["Properties"]["MetricTransformations"] if t["MetricNamespace"] == "xrelay"}


XRELAY_METRICS = {value for name, value in vars(M).items() if name.isupper()} | metric_filter_metrics()


def services() -> set[str]:
    """The ``service`` dimension values: each function's, and the API access log's (the metric filters)."""
    # WebhookFunction (Endpoint=FunctionUrl) names none: it counts as crc and as intake, by path.
    found = {RESOURCES[f]["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") for f in FUNCTIONS}
    found.discard(None)
    access_log = RESOURCES["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"]["Fn::Sub"]
    found.add(json.loads(access_log.replace("${Stage}", "dev"))["service"])
    return found


SERVICES = services()


# --------------------------------------------------------------------------------------------- alarms

def alarm_metrics(props: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads."""
    if "MetricName" in props:
        yield props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield metric["Namespace"], metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}


def check_metric(namespace: str, name: str, dimensions: dict[str, Any], ref: Any, get_att: Any,
                 endpoint: str = "HttpApi") -> None:
    """The metric exists: one of ours with our dimensions, or an AWS metric of one of this stack's resources."""
    created = present(endpoint)
    if namespace == "xrelay":
        filtered = {t["MetricName"] for n, res in RESOURCES.items() if res["Type"] == "AWS::Logs::MetricFilter"
                    and n not in created for t in res["Properties"]["MetricTransformations"]}
        assert name in XRELAY_METRICS - filtered, f"no function or metric filter emits {name}"
        assert set(dimensions) == {"service", "Stage"} and dimensions["Stage"] == ref("Stage")
        assert dimensions["service"] in SERVICES
    elif namespace == "AWS/Lambda":
        assert dimensions == {"FunctionName": dimensions["FunctionName"]}
        assert dimensions["FunctionName"] in [ref(f) for f in FUNCTIONS if f in created]
        if name.startswith("Url"):  # a function URL's own metrics
            assert dimensions["FunctionName"] == ref("WebhookFunction")
    elif namespace == "AWS/SQS":
        queues = [q for q, res in RESOURCES.items() if res["Type"] == "AWS::SQS::Queue"]
        assert dimensions["QueueName"] in [get_att(q, "QueueName") for q in queues]
    elif namespace == "AWS/ApiGateway":
        assert "WebhookApi" in created and dimensions == {"ApiId": ref("WebhookApi")}
    else:
        raise AssertionError(f"unexpected namespace {namespace}")


def template_ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def template_get_att(name: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_notifies_the_alarm_topic(alarm):
    props = RESOURCES[alarm]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert props.get("OKActions") == (None if alarm in ONE_OFF_ALARMS else [{"Ref": "AlarmTopic"}])
    assert props["TreatMissingData"] == "notBreaching"  # metrics are emitted only when something happens
    assert "AlarmName" not in props  # `xrelay status` finds the stack's alarms by CloudFormation's names


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_reads_metrics_that_exist(alarm, endpoint):
    props = chosen(RESOURCES[alarm]["Properties"], endpoint)
    metrics = list(alarm_metrics(props))
    assert metrics
    for namespace, name, dimensions in metrics:
        check_metric(namespace, name, dimensions, template_ref, template_get_att, endpoint)
    if "Metrics" in props:
        returned = [q for q in props["Metrics"] if q["ReturnData"]]
        assert len(returned) == 1 and "Expression" in returned[0]
        ids = {q["Id"] for q in props["Metrics"] if "MetricStat" in q}
        used = set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b", returned[0]["Expression"]))
        assert used == ids, f"{alarm}: the expression uses {used}, the alarm reads {ids}"


def test_the_intake_alarm_still_drives_the_replay():
    rule = RESOURCES["ReplayFunction"]["Properties"]["Events"]["IntakeAlarm"]["Properties"]["Pattern"]
    assert rule["resources"] == [{"Fn::GetAtt": ["IntakeUnavailableAlarm", "Arn"]}]


def test_the_throttling_alarm_counts_api_429s_from_the_access_log():
    (name, spec), = [(n, r) for n, r in RESOURCES.items() if r["Type"] == "AWS::Logs::MetricFilter"]
    props = spec["Properties"]
    assert props["LogGroupName"] == {"Ref": "WebhookApiAccessLogGroup"}
    assert props["FilterPattern"] == '{ $.status = "429" }'
    access_log = RESOURCES["WebhookApi"]["Properties"]["AccessLogSettings"]
    assert access_log["DestinationArn"] == {"Fn::GetAtt": ["WebhookApiAccessLogGroup", "Arn"]}
    fields = json.loads(access_log["Format"]["Fn::Sub"].replace("${Stage}", "dev"))
    assert fields["status"] == "$context.status" and fields["stage"] == "dev"
    (transformation,) = props["MetricTransformations"]
    assert {d["Key"]: d["Value"] for d in transformation["Dimensions"]} == {"service": "$.service", "Stage": "$.stage"}
    alarm = chosen(RESOURCES["ThrottlingAlarm"]["Properties"], "HttpApi")
    throttling = {(ns, metric) for ns, metric, _ in alarm_metrics(alarm)}
    assert throttling == {("xrelay", transformation["MetricName"]), ("AWS/Lambda", "Throttles")}
    assert spec["Condition"] == "ViaHttpApi"  # no API, no access log: nothing to filter


def test_with_a_function_url_the_alarms_read_the_one_function_and_its_url():
    """No API in front: its throttle is Lambda's (IntakeReservedConcurrency), its 5xx the function URL's."""
    throttling = chosen(RESOURCES["ThrottlingAlarm"]["Properties"], "FunctionUrl")
    assert list(alarm_metrics(throttling)) == [("AWS/Lambda", "Throttles", {"FunctionName": {"Ref": "WebhookFunction"}})]
    unavailable = list(alarm_metrics(chosen(RESOURCES["IntakeUnavailableAlarm"]["Properties"], "FunctionUrl")))
    lambda_metrics = {(name, dims["FunctionName"]["Ref"]) for ns, name, dims in unavailable if ns == "AWS/Lambda"}
    assert lambda_metrics == {("Url5xxCount", "WebhookFunction"), ("Errors", "WebhookFunction"),
                              ("Throttles", "WebhookFunction")}
    crc = list(alarm_metrics(chosen(RESOURCES["CrcFailingAlarm"]["Properties"], "FunctionUrl")))
    assert ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "WebhookFunction"}}) in crc
    # the xrelay metrics keep their service (WebhookFunction counts as crc and as intake)
    assert {dims["service"] for ns, _, dims in unavailable if ns == "xrelay"} == {"intake", "crc"}


# ------------------------------------------------------------------------------------------ dashboard

def dashboard(endpoint: str = "HttpApi") -> dict[str, Any]:
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in re.findall(r"\$\{([^}!]+)\}", body):
        assert name in PSEUDO_PARAMETERS or name in PARAMETERS or name in variables or \
            name.split(".")[0] in RESOURCES, name
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", "Stage": "prod", "Endpoint": endpoint})
    resolver = tpl.Resolver(TEMPLATE, values, ref=lambda name: f"ref:{name}",
                            get_att=lambda name, attribute: f"att:{name}.{attribute}")
    return json.loads(resolver.resolve({"Fn::Sub": [body, variables]}))


DASHBOARD = dashboard()
DASHBOARDS = {endpoint: dashboard(endpoint) for endpoint in ENDPOINTS}


def dashboard_ref(name: str) -> str:
    return "prod" if name == "Stage" else f"ref:{name}"


def dashboard_get_att(name: str, attribute: str) -> str:
    return f"att:{name}.{attribute}"


def dashboard_metrics(endpoint: str = "HttpApi") -> Iterator[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, name, dimensions, options) of every metric graphed; SEARCH expressions included."""
    for widget in DASHBOARDS[endpoint]["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):
                expression = metric[0]["expression"]
                (schema, query), = re.findall(r"SEARCH\('\{([^}]*)\}([^']*)'", expression)
                namespace, *dimension_names = schema.split(",")
                terms = dict(re.findall(r'(\w+)="([^"]*)"', query))
                yield namespace, terms.pop("MetricName"), terms, {"schema": set(dimension_names)}
            else:
                options = metric[-1] if isinstance(metric[-1], dict) else {}
                values = metric[:-1] if options else metric
                yield values[0], values[1], dict(zip(values[2::2], values[3::2], strict=True)), options


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_dashboard_graphs_only_metrics_that_exist(endpoint):
    for namespace, name, dimensions, options in dashboard_metrics(endpoint):
        if "schema" in options:  # a SEARCH: the dimension set intake emits EventsReceived with
            assert namespace == "xrelay" and name == M.EVENTS_RECEIVED and dimensions["Stage"] == "prod"
            assert options["schema"] == {"EventType", "Source", "Stage", "service"}
            continue
        check_metric(namespace, name, dimensions, dashboard_ref, dashboard_get_att, endpoint)


def test_with_a_function_url_the_dashboard_graphs_the_one_function_and_its_url():
    graphed = {(namespace, name, dims.get("FunctionName")) for namespace, name, dims, _ in dashboard_metrics("FunctionUrl")}
    assert {("AWS/Lambda", "Duration", "ref:WebhookFunction"), ("AWS/Lambda", "UrlRequestLatency", "ref:WebhookFunction"),
            ("AWS/Lambda", "Url5xxCount", "ref:WebhookFunction"), ("AWS/Lambda", "Throttles", "ref:WebhookFunction")} <= graphed
    assert not {g for g in graphed if g[0] == "AWS/ApiGateway" or g[1] == "RequestsThrottled"}
    assert len(DASHBOARDS["FunctionUrl"]["widgets"]) == len(DASHBOARD["widgets"])  # the same screen


def test_the_dashboard_shows_what_the_operator_asked_for():
    names = {name for _, name, _, _ in dashboard_metrics()}
    assert {M.EVENTS_RECEIVED, M.DUPLICATES_DROPPED, M.SIGNATURES_REFUSED, M.CRC_REFUSED, M.WEBHOOK_VALID,
            M.OUTAGES_OPENED, M.OUTAGE_MINUTES_UNRECOVERED, M.OUTAGE_MINUTES_LOST, M.REPLAY_JOBS_STARTED,
            M.REPLAY_JOBS_COMPLETED, M.REPLAY_JOBS_INCOMPLETE, M.EVENTS_RECOVERED_BY_REPLAY, "RequestsThrottled",
            "ApproximateNumberOfMessagesVisible"} <= names
    durations = {(dims["FunctionName"], options["stat"]) for namespace, name, dims, options in dashboard_metrics()
                 if (namespace, name) == ("AWS/Lambda", "Duration")}
    assert {("ref:CrcFunction", "p50"), ("ref:CrcFunction", "p99"),
            ("ref:IntakeFunction", "p50"), ("ref:IntakeFunction", "p99")} <= durations
    dlq = [dims for namespace, name, dims, _ in dashboard_metrics() if name == "ApproximateNumberOfMessagesVisible"]
    assert {"QueueName": "att:EventsDLQ.QueueName"} in dlq


def test_the_dashboard_shows_every_alarm_and_its_widgets_do_not_overlap():
    (alarm_widget,) = [w for w in DASHBOARD["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"att:{a}.Arn" for a in ALARMS)
    taken: set[tuple[int, int]] = set()
    for widget in DASHBOARD["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        cells = {(widget["x"] + dx, widget["y"] + dy) for dx in range(widget["width"]) for dy in range(widget["height"])}
        assert not cells & taken, f"{widget['properties'].get('title')} overlaps another widget"
        taken |= cells


def test_the_dashboard_url_output_names_the_dashboard():
    url = TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert "${Dashboard}" in url and "region=${AWS::Region}" in url


# ------------------------------------------------------------------------------- Parameters, Outputs

def references(node: Any) -> tuple[set[str], set[str]]:
    """(names referenced by Ref/Sub, Conditions named by If/Condition) anywhere under node."""
    names: set[str] = set()
    conditions: set[str] = set()
    if isinstance(node, list):
        for item in node:
            n, c = references(item)
            names |= n
            conditions |= c
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                names.add(value)
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                names |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            elif key == "Fn::If":
                conditions.add(value[0])
            elif key == "Condition" and isinstance(value, str):
                conditions.add(value)
            n, c = references(value)
            names |= n
            conditions |= c
    return names, conditions


def test_every_parameter_and_condition_is_used():
    # Rules only validate Parameters: a Parameter only a Rule reads would change nothing.
    names, conditions = references([TEMPLATE["Globals"], RESOURCES, TEMPLATE["Outputs"]])
    pending = set(conditions)
    while pending:  # a Condition may be built on another
        more_names, more = references(TEMPLATE["Conditions"][pending.pop()])
        names |= more_names
        pending |= more - conditions
        conditions |= more
    assert set(PARAMETERS) - names == set()
    assert set(TEMPLATE["Conditions"]) - conditions == set()


def test_only_the_app_secret_has_no_default():
    assert [name for name, spec in PARAMETERS.items() if "Default" not in spec] == ["XAppSecretArn"]


def test_the_outputs_operators_and_consumers_need():
    assert {"WebhookUrl", "EventsQueueUrl", "EventsQueueArn", "EventsDLQUrl", "EventsDLQArn", "EventsTableName",
            "StateTableName", "DashboardUrl", "AlarmTopicArn", "CustomDomainTarget"} <= set(TEMPLATE["Outputs"])
    assert TEMPLATE["Outputs"]["CustomDomainTarget"]["Condition"] == "HasCustomDomain"


@pytest.mark.parametrize("domain,url", [
    ("", "https://ref:WebhookApi.execute-api.us-east-1.amazonaws.com/webhook"),
    ("x-webhook.example.com", "https://x-webhook.example.com/webhook")])
def test_the_webhook_url_is_on_the_custom_domain_when_there_is_one(domain, url):
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", "CustomDomainName": domain})
    resolver = tpl.Resolver(TEMPLATE, values, ref=lambda name: f"ref:{name}", get_att=lambda *_: "")
    assert resolver.resolve(TEMPLATE["Outputs"]["WebhookUrl"]["Value"]) == url


def test_with_a_function_url_the_webhook_url_is_the_function_urls_webhook_path():
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", "Endpoint": "FunctionUrl"})
    url = "https://a1b2c3.lambda-url.us-east-1.on.aws/"  # Lambda's FunctionUrl attribute ends with "/"
    resolver = tpl.Resolver(TEMPLATE, values, ref=lambda name: f"ref:{name}",
                            get_att=lambda name, attribute: url if (name, attribute) == ("WebhookFunctionUrl",
                                                                                        "FunctionUrl") else None)
    assert resolver.resolve(TEMPLATE["Outputs"]["WebhookUrl"]["Value"]) == url + "webhook"
    from xrelay.receiving.function_url import WEBHOOK_PATH
    assert url.rstrip("/") + WEBHOOK_PATH == url + "webhook"  # the path the function answers


# -------------------------------------------------------------------------------------------- README

def section(heading: str) -> str:
    """README text from a heading to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = README.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", README[start + 1:])]
    return README[start:start + 1 + ends[0]] if ends else README[start:]


def first_column(text: str) -> set[str]:
    """Every `name` in the first column of the tables in text."""
    return {name for row in re.findall(r"^ *\| ([^|]+) \|", text, re.M) for name in re.findall(r"`([^`]+)`", row)}


def readme_default(spec: dict[str, Any]) -> str:
    if "Default" not in spec:
        return "(required)"
    return "empty" if spec["Default"] == "" else f"`{spec['Default']}`"


def test_readme_lists_every_parameter_with_its_default():
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section("## Configure: template Parameters"), re.M))
    assert set(PARAMETERS) - set(rows) == set(), "Parameters without a README row"
    assert {name: rows[name].strip() for name in PARAMETERS} == {name: readme_default(spec)
                                                                 for name, spec in PARAMETERS.items()}


def test_readme_lists_every_alarm_and_no_other():
    assert first_column(section("### Alarms (to the `AlarmTopic` SNS topic)")) == set(ALARMS)


def test_readme_lists_every_metric():
    documented = first_column(section("### Metrics (namespace `xrelay`, dimensions `service` and `Stage`)"))
    assert XRELAY_METRICS - documented == set()


def test_readme_lists_every_output():
    assert set(TEMPLATE["Outputs"]) - first_column(section("## Deploy")) == set()


# ---------------------------------------------------------------------------------- samconfig, build

SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_environment_gives_every_required_parameter(environment):
    deploy = SAMCONFIG[environment]["deploy"]["parameters"]
    assert {"capabilities", "region", "resolve_s3", "confirm_changeset"} <= set(deploy)
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', deploy["parameter_overrides"]))
    # plain `sam deploy [--config-env prod]` works: the app secret is named (README: Deploy, step 1)
    required = {name for name, spec in PARAMETERS.items() if "Default" not in spec}
    assert required <= set(overrides) <= set(PARAMETERS)
    for name, value in overrides.items():
        spec = PARAMETERS[name]
        assert value in map(str, spec.get("AllowedValues", [value])), f"{environment}: {name}={value}"
        assert re.fullmatch(spec.get("AllowedPattern", ".*"), value), f"{environment}: {name}={value}"
    assert SAMCONFIG[environment]["global"]["parameters"]["stack_name"]


def makefile_layers() -> list[str]:
    return [name for name, res in RESOURCES.items() if res["Type"] == "AWS::Serverless::LayerVersion"
            and res.get("Metadata", {}).get("BuildMethod") == "makefile"]


def test_make_build_checks_the_bytecode_of_every_layer():
    (layers,) = re.findall(r"^LAYERS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert sorted(layers.split()) == sorted(makefile_layers())


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("layer", makefile_layers())
def test_every_layer_compiles_unchecked_hash_bytecode_for_lambda(layer, tmp_path):
    """Run as `sam build` does (a scratch copy as the working directory, the original Makefile named),
    dry: `make -n` still follows the recursive compile step, printing it, so the wiring is really checked."""
    source = ROOT / RESOURCES[layer]["Properties"]["ContentUri"]
    scratch, artifacts = tmp_path / "scratch", tmp_path / "artifacts"
    shutil.copytree(source, scratch, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run(["make", "-n", "--makefile", str(source / "Makefile"), f"build-{layer}",
                           f"ARTIFACTS_DIR={artifacts}"], cwd=scratch, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.replace("\\\n", " ")
    assert "--no-compile" in commands  # pip's own (timestamp) .pyc would be ignored in Lambda
    (compile_line,) = [line for line in commands.splitlines() if "-m compileall" in line]
    assert "--invalidation-mode unchecked-hash" in compile_line and f'"{artifacts}/python"' in compile_line
    assert '-p "/opt/python"' in compile_line
