"""Issue 16: the functions log in Lambda's JSON format so that Lambda's START/END/REPORT lines can be
left out (PlatformLogLevel), without Lambda's application-log filter dropping the EMF documents or
overriding the LogLevel Parameter."""

from __future__ import annotations

import logging

import pytest

import iam
from conftest import ROOT
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
PARAMETERS = TEMPLATE["Parameters"]
FUNCTIONS = sorted(tpl.functions(TEMPLATE))
LAMBDA_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]  # ApplicationLogLevel, most verbose first


def logging_config(function: str, **parameters: str) -> dict:
    resolved = iam.resolver(**parameters).resolve(TEMPLATE["Resources"][function]["Properties"]["LoggingConfig"])
    return iam.drop_no_value(resolved)


def test_platform_lines_are_off_by_default_and_a_parameter_brings_them_back():
    assert PARAMETERS["PlatformLogLevel"]["Default"] == "WARN"
    assert PARAMETERS["PlatformLogLevel"]["AllowedValues"] == ["DEBUG", "INFO", "WARN"]  # Lambda's SystemLogLevel
    for function in FUNCTIONS:
        assert logging_config(function)["SystemLogLevel"] == "WARN"
        assert logging_config(function, PlatformLogLevel="INFO")["SystemLogLevel"] == "INFO"


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("level", PARAMETERS["LogLevel"]["AllowedValues"])
def test_lambda_never_filters_out_the_emf_documents(function, level):
    """An EMF document has no "level": Lambda counts it as INFO, so its filter must never be above INFO
    (SystemLogLevel needs the JSON format); DEBUG lines pass when LogLevel asks for them."""
    config = logging_config(function, LogLevel=level)
    assert config["LogFormat"] == "JSON"
    application = config["ApplicationLogLevel"]
    assert LAMBDA_LEVELS.index(application) <= LAMBDA_LEVELS.index("INFO")
    assert (application == "DEBUG") == (level == "DEBUG")


@pytest.mark.parametrize(("loglevel", "lambda_level", "expected"), [
    ("WARNING", "INFO", logging.WARNING),  # Lambda's INFO only lets the EMF through: LogLevel decides
    ("ERROR", "INFO", logging.ERROR),
    ("INFO", "INFO", logging.INFO),
    ("DEBUG", "DEBUG", logging.DEBUG),
    ("WARNING", None, logging.WARNING),  # outside Lambda (tests, `xrelay local`): as before
])
def test_the_log_level_parameter_decides_over_lambdas_application_level(monkeypatch, loglevel, lambda_level,
                                                                         expected):
    from xrelay.observability import make_logger

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", loglevel)
    if lambda_level:
        monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", lambda_level)
    else:
        monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    logger = make_logger(f"probe-alc-{loglevel}-{lambda_level}")
    assert logger.log_level == expected
    assert logging.getLevelName(logger.initial_log_level) == expected or logger.initial_log_level == expected


def test_the_readme_documents_the_platform_log_level():
    readme = (ROOT / "README.md").read_text()
    assert "| `PlatformLogLevel` | `WARN` |" in readme


def test_the_access_log_holds_what_the_throttling_metric_and_an_operator_need_and_no_more():
    import json

    access_log = TEMPLATE["Resources"]["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"]["Fn::Sub"]
    fields = json.loads(access_log.replace("${Stage}", "dev"))
    filtered = {t for res in TEMPLATE["Resources"].values() if res["Type"] == "AWS::Logs::MetricFilter"
                and res["Properties"]["LogGroupName"] == {"Ref": "WebhookApiAccessLogGroup"}
                for t in (res["Properties"]["FilterPattern"], *(d["Value"] for m in res["Properties"][
                    "MetricTransformations"] for d in m.get("Dimensions", [])))}
    assert {"status", "service", "stage"} <= {key for key in fields if any(f"$.{key}" in f for f in filtered)}
    # the README's runbooks: the addresses of a flood or a prober, and why the API could not reach a function
    assert fields["ip"] == "$context.identity.sourceIp" and fields["error"] == "$context.integrationErrorMessage"
    assert set(fields) == {"ip", "route", "status", "error", "service", "stage"}
