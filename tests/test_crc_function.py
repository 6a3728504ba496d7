"""CrcFunction through its real handler, environment and Secrets Manager (moto)."""

import json

from helpers import crc
from xrelay.aws import client
from xrelay.receiving.signature import sign
from xrelay.tools.local.local import DEV_CONSUMER_SECRET


def test_crc_answers_with_the_consumer_secret(stack):
    status, body = crc(stack, "crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553")
    assert status == 200
    assert body == {"response_token": sign(DEV_CONSUMER_SECRET, b"9b4507b3-9040-4669-9ca3-6b94edb50553")}


def test_short_tokens_like_xs_own_examples_are_answered(stack):
    assert crc(stack, "crc_token=foo")[0] == 200


def test_crc_ignores_extra_parameters_such_as_a_nonce(stack):
    status, body = crc(stack, "crc_token=foo&nonce=abc123")
    assert status == 200 and body["response_token"] == sign(DEV_CONSUMER_SECRET, b"foo")


def test_missing_or_empty_token_is_400_with_a_reason(stack):
    for query in ("", "crc_token=", "other=1"):
        status, body = crc(stack, query)
        assert status == 400 and "missing" in body["error"]


def test_token_that_could_be_a_body_is_refused_not_signed(stack):
    status, body = crc(stack, 'crc_token={"for_user_id":"1"}')
    assert status == 400 and "response_token" not in body


def test_crc_answers_with_the_current_secret_during_rotation(stack):
    arn = stack.environment("CrcFunction")["X_APP_SECRET_ARN"]
    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(
        {"consumer_secret": "new-secret", "previous_consumer_secret": DEV_CONSUMER_SECRET}))
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()  # a warm function would see the new value after SecretCacheSeconds
    status, body = crc(stack, "crc_token=foo")
    assert status == 200 and body["response_token"] == sign("new-secret", b"foo")


def test_secret_is_read_once_per_warm_function(stack):
    calls = []
    import botocore.client  # Powertools uses its own client: count at the botocore level

    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if operation == "GetSecretValue":
            calls.append(operation)
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        for _ in range(5):
            assert crc(stack, "crc_token=foo")[0] == 200
    finally:
        botocore.client.BaseClient._make_api_call = original
    assert len(calls) == 1


def test_secrets_manager_failure_is_503_so_x_retries(stack):
    arn = stack.environment("CrcFunction")["X_APP_SECRET_ARN"]
    client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()
    status, body = crc(stack, "crc_token=foo")
    assert status == 503 and DEV_CONSUMER_SECRET not in json.dumps(body)


def test_secret_is_read_with_the_fail_fast_client(stack):
    """X gives the CRC about 3 s: Secrets Manager must not get botocore's 60 s default timeouts."""
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    assert crc(stack, "crc_token=foo")[0] == 200
    config = DEFAULT_PROVIDERS["secrets"].client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 4)
    assert config.retries["total_max_attempts"] == 3
