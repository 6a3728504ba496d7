"""Each function ships what it imports (issue 16): its layers are those of the modules it imports, no more.

The layers' contents are read from their requirements.txt and the installed packages' metadata
(the dependencies pip adds, for Lambda's python3.13 on arm64); each function then runs in a fresh
interpreter (tests/layer_probe.py) in which the packages of every layer it does not attach are
refused at import, as they would be missing in Lambda.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from conftest import ROOT
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = sorted(tpl.functions(TEMPLATE))
LAYERS = sorted(name for name, res in RESOURCES.items() if res["Type"] == "AWS::Serverless::LayerVersion")
# What Lambda's python3.13 runtime provides (boto3 and what it depends on), whatever the layers.
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"}
# Markers evaluated for Lambda's interpreter, not the one running the tests.
LAMBDA_MARKERS = {"python_version": "3.13", "python_full_version": "3.13.0", "sys_platform": "linux",
                  "platform_system": "Linux", "platform_machine": "aarch64", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def layers_of(function: str, tracing: bool) -> list[str]:
    parameters = tpl.parameter_values(TEMPLATE, {"EnableTracing": str(tracing).lower(), "XAppSecretArn": "x"})
    return tpl.Resolver(TEMPLATE, parameters, ref=str, get_att=lambda *a: "").function_layers(function)


def distributions(requirements: list[str]) -> set[str]:
    """The distributions pip installs for ``requirements``: them and their dependencies, for Lambda."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(LAMBDA_MARKERS):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(Requirement(r) for r in metadata.distribution(name).requires or [])
    return seen


def top_level_modules(distribution: str) -> set[str]:
    files = metadata.distribution(distribution).files or []
    tops = {f.parts[0].removesuffix(".py") for f in files
            if len(f.parts) > 1 or f.suffix == ".py"}
    return {t for t in tops if t.isidentifier() and t not in ("__pycache__", "bin")}


@cache
def layer_modules(layer: str) -> frozenset[str]:
    """The top-level modules a layer ships: its requirements' (with what pip adds), and its own packages."""
    directory = ROOT / RESOURCES[layer]["Properties"]["ContentUri"]
    lines = [line.split("#")[0].strip() for line in (directory / "requirements.txt").read_text().splitlines()]
    modules = set().union(*(top_level_modules(d) for d in distributions([line for line in lines if line])))
    modules |= {p.name for p in directory.iterdir() if (p / "__init__.py").is_file()}  # e.g. xrelay
    return frozenset(modules - RUNTIME)


# The operator's tools are in the package but not in XrelayLayer (its Makefile copies the runtime
# only): no function may reach them, whatever it attaches.
NOT_SHIPPED = {"xrelay.tools"}


def refused_for(attached: list[str]) -> set[str]:
    shipped = set().union(*(layer_modules(layer) for layer in attached))
    return set().union(*(layer_modules(layer) for layer in LAYERS)) - shipped | NOT_SHIPPED


def probe(function: str, refused: set[str], tmp_path, parameters: dict[str, str] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XRELAY_TEST", "PYTEST"))}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "layer_probe.py"), function,
                           json.dumps(sorted(refused)), json.dumps(parameters or {})],
                          env={**env, "PROBE_TMP": str(tmp_path)}, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the template

def test_each_layer_ships_the_modules_it_is_named_for():
    assert {"xrelay", "aws_lambda_powertools"} <= layer_modules("XrelayLayer")
    assert {"pydantic", "pydantic_core"} <= layer_modules("PydanticLayer")
    assert {"httpx", "oauthlib", "httpcore", "anyio", "h11"} <= layer_modules("XClientLayer")
    assert {"aws_xray_sdk", "wrapt"} <= layer_modules("TracingLayer")
    # what each layer is split off for is in that layer only
    for module, layer in (("pydantic", "PydanticLayer"), ("httpx", "XClientLayer"), ("oauthlib", "XClientLayer"),
                          ("aws_xray_sdk", "TracingLayer")):
        assert [name for name in LAYERS if module in layer_modules(name)] == [layer]


def test_functions_list_their_layers_none_come_from_globals():
    """A function added later states what it ships rather than inheriting every layer."""
    assert "Layers" not in TEMPLATE["Globals"]["Function"]
    for function in FUNCTIONS:
        assert RESOURCES[function]["Properties"]["Layers"][0] == {"Ref": "XrelayLayer"}, function


@pytest.mark.parametrize("tracing", [False, True])
def test_each_function_attaches_the_layers_of_what_it_imports(tracing):
    extra = ["TracingLayer"] if tracing else []
    assert {fn: layers_of(fn, tracing) for fn in FUNCTIONS} == {
        "CrcFunction": ["XrelayLayer", *extra],  # no pydantic on the CRC's path (xrelay.config, webhook)
        "IntakeFunction": ["XrelayLayer", "PydanticLayer", *extra],
        "PublisherFunction": ["XrelayLayer", "PydanticLayer", *extra],
        "ReconcileFunction": ["XrelayLayer", "PydanticLayer", "XClientLayer", *extra],  # xrelay.subscriptions.xapi
        "ReplayFunction": ["XrelayLayer", "PydanticLayer", "XClientLayer", *extra],
        "WebhookFunction": ["XrelayLayer", "PydanticLayer", *extra],  # Endpoint=FunctionUrl: the CRC + intake
    }


def test_tracing_is_a_parameter_change_the_layer_is_always_built():
    """EnableTracing only attaches TracingLayer: the layer is built and published whatever it says."""
    assert "Condition" not in RESOURCES["TracingLayer"]
    for function in FUNCTIONS:
        assert {"Fn::If": ["TracingOn", {"Ref": "TracingLayer"}, {"Ref": "AWS::NoValue"}]} in \
            RESOURCES[function]["Properties"]["Layers"], function


def test_no_function_exceeds_lambdas_five_layers():
    assert max(len(layers_of(fn, tracing=True)) for fn in FUNCTIONS) <= 5


# ------------------------------------------------------------------ the functions, with only their layers

# Replay parameters that make the probe's outage (20 to 1 minutes ago) due now, for a webhook X knows.
REPLAY_NOW = {"WebhookId": "1234567890", "ReplayMinAgeMinutes": "0", "ReplayMarginMinutes": "0"}
# Every function untraced; traced, one function of each set of layers (each probe is a few seconds).
CASES = [(fn, False) for fn in FUNCTIONS] + [(fn, True) for fn in ("CrcFunction", "IntakeFunction",
                                                                   "ReconcileFunction")]


@pytest.mark.parametrize("function,tracing", CASES, ids=[f"{fn}-{'traced' if t else 'untraced'}" for fn, t in CASES])
def test_the_function_runs_with_only_its_layers(function, tracing, tmp_path):
    refused = refused_for(layers_of(function, tracing))
    assert ("aws_xray_sdk" in refused) is not tracing
    endpoint = {"Endpoint": "FunctionUrl"} if function == "WebhookFunction" else {}
    out = probe(function, refused, tmp_path, {"EnableTracing": str(tracing).lower(), **REPLAY_NOW, **endpoint})
    assert out["refused_loaded"] == []
    result = out["result"]
    if function == "CrcFunction":
        assert result["statusCode"] == 200 and "response_token" in json.loads(result["body"])
    elif function in ("IntakeFunction", "WebhookFunction"):  # a signed delivery, stored
        assert result["statusCode"] == 200 and json.loads(result["body"])["events"] >= 1, result
    elif function == "PublisherFunction":
        assert result == {"batchItemFailures": []}
    else:  # the reconcile and the replay: the X client (httpx) ran, and found X unreachable
        assert result["ok"] is False and "TransportError" in result["error"], result


def test_the_probe_would_catch_a_missing_layer(tmp_path):
    """Not vacuous: the reconcile without XClientLayer cannot even be imported."""
    refused = refused_for(["XrelayLayer", "PydanticLayer"])
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "layer_probe.py"), "ReconcileFunction",
                           json.dumps(sorted(refused)), "{}"],
                          env={**os.environ, "PROBE_TMP": str(tmp_path)}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0 and "No module named 'httpx' (its layer is not attached)" in done.stderr
