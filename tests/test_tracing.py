"""EnableTracing=true: the functions start with Powertools' Tracer and still do their job.

The TracingLayer ships aws-xray-sdk (dev installs have it too); with tracing off the SDK is
never imported, which keeps the CRC's cold start small.
"""


from moto import mock_aws

from conftest import ROOT, fixture_bytes
from helpers import post
from xrelay.aws import client
from xrelay.tools.local.local import LocalStack


def test_intake_and_publisher_run_traced():
    with mock_aws():
        client.cache_clear()
        traced = LocalStack(ROOT, "xrelay-traced")
        traced.provision({"EnableTracing": "true"})
        assert traced.environment("IntakeFunction")["XRELAY_TRACING"] == "true"
        assert post(traced, fixture_bytes("xaa/01_post.create.json"))[0] == 200
        assert traced.drain() == 1
        assert traced.module("IntakeFunction").handler.tracer is not None
        assert traced.module("PublisherFunction").tracer is not None
    client.cache_clear()


def test_untraced_functions_do_not_build_a_tracer(stack):
    assert stack.environment("IntakeFunction")["XRELAY_TRACING"] == "false"
    assert stack.module("IntakeFunction").handler.tracer is None
    assert not hasattr(stack.module("CrcFunction"), "tracer")  # the CRC never builds one: ~200 ms of cold start
