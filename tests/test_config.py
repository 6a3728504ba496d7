"""Settings: what the functions read from the environment the template gives them."""

import pytest

from xrelay.config import Settings


def test_defaults_when_the_environment_is_empty():
    settings = Settings.from_env({})
    assert settings.app_secret_arn == ""
    assert settings.x_api_base_url == "https://api.x.com"
    assert settings.stack_name == "xrelay"
    assert (settings.stage, settings.retention_days, settings.secret_cache_seconds) == ("dev", 30, 300)


def test_the_template_variables_are_read():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:xrelay/x-app-AbCdEf"
    settings = Settings.from_env({"X_APP_SECRET_ARN": arn, "X_API_BASE_URL": "https://x.example/proxy",
                                  "STACK_NAME": "xrelay-prod", "STATE_TABLE": "state", "SECRET_CACHE_SECONDS": "60"})
    assert (settings.app_secret_arn, settings.x_api_base_url, settings.stack_name) == (
        arn, "https://x.example/proxy", "xrelay-prod")
    assert (settings.state_table, settings.secret_cache_seconds) == ("state", 60)


def test_the_old_variable_name_is_gone():
    settings = Settings.from_env({"CONSUMER_SECRET_ARN": "arn:old"})
    assert settings.app_secret_arn == ""
    assert not hasattr(settings, "consumer_secret_arn")


@pytest.mark.parametrize("name", ["X_API_BASE_URL", "STACK_NAME"])
def test_empty_values_fall_back_to_the_defaults(name):
    settings = Settings.from_env({name: ""})
    assert (settings.x_api_base_url, settings.stack_name) == ("https://api.x.com", "xrelay")
