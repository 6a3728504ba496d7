"""README's Deploy section, walked as far as it goes without AWS.

Every command of its code blocks is either run (against moto and the fake X) or checked against
what it would use: the secret it creates is the one samconfig.toml names, every `sam deploy` of
it finds each required Parameter in samconfig with a value the template accepts, `make build` is a
target, and every `xrelay` command runs as written (`doctor` on the local stack's served URL).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
import tomllib

import httpx
import pytest

from conftest import ROOT
from xrelay.aws import client
from xrelay.tools.cli import template as tpl
from xrelay.tools.cli.cli import main

README = (ROOT / "README.md").read_text()
TEMPLATE = tpl.load(ROOT / "template.yaml")
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def deploy_section() -> str:
    return README[README.index("\n## Deploy\n"):README.index("\n### Removing a stack\n")]


def commands() -> list[list[str]]:
    """Each shell command of the section's bash blocks, comments dropped, continuation lines joined."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", deploy_section(), re.S):
        pending = ""
        for line in block.splitlines():
            pending += line.strip() + "\n"
            if pending.rstrip().endswith("\\"):
                continue
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quotation still open: the command goes on
                continue
            pending = ""
            if words:
                found.append(words)
        assert not pending.strip(), f"unterminated command: {pending!r}"
    return found


def by_program(program: str) -> list[list[str]]:
    return [c for c in commands() if c[0].endswith(program)]


def overrides(environment: str) -> dict[str, str]:
    text = SAMCONFIG[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(word.split("=", 1) for word in shlex.split(text))


def environment_of(command: list[str]) -> str:
    return command[command.index("--config-env") + 1] if "--config-env" in command else "default"


def test_the_section_has_the_commands_it_describes():
    programs = [c[0].rsplit("/", 1)[-1] + " " + c[1] for c in commands()]
    assert programs[:4] == ["aws secretsmanager", "make build", "sam deploy", "sam deploy"]
    assert {"xrelay outputs", "xrelay subscriptions", "xrelay users", "xrelay doctor"} <= set(programs)


def test_the_secret_it_creates_is_the_one_every_sam_deploy_uses():
    from moto import mock_aws

    (create,) = by_program("aws")
    name = create[create.index("--name") + 1]
    value = json.loads(create[create.index("--secret-string") + 1])
    assert {"consumer_key", "consumer_secret", "bearer_token"} <= set(value)
    with mock_aws():  # a fresh account, as on the first day
        client.cache_clear()
        arn = client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
    client.cache_clear()
    assert arn.split(":secret:")[1].startswith(name + "-")  # what the template's read grant covers for a name
    for command in by_program("sam"):
        assert overrides(environment_of(command))["XAppSecretArn"] == name


@pytest.mark.parametrize("command", by_program("sam"), ids=lambda c: " ".join(c[1:]))
def test_each_sam_deploy_finds_every_parameter_it_needs(command):
    assert command[1] == "deploy"
    env = environment_of(command)
    config = SAMCONFIG[env]
    assert config["global"]["parameters"]["stack_name"]
    deploy = config["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"] and deploy["region"] and deploy["resolve_s3"]
    given = overrides(env)
    parameters = TEMPLATE["Parameters"]
    assert set(given) <= set(parameters)
    assert {name for name, spec in parameters.items() if "Default" not in spec} <= set(given)
    for name, value in given.items():
        spec = parameters[name]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (env, name, value)
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (env, name, value)
        if "MinValue" in spec:
            assert spec["MinValue"] <= float(value) <= spec.get("MaxValue", float("inf")), (env, name, value)


def test_make_build_is_a_target():
    (build,) = by_program("make")
    assert build == ["make", "build"]
    done = subprocess.run(["make", "-n", "-C", str(ROOT), "build"], capture_output=True, text=True)
    assert done.returncode == 0 and "sam build" in done.stdout and "check-pyc" in done.stdout


def test_the_xrelay_commands_run_as_written(fake_x, stack, tmp_path, monkeypatch, capsys):
    from xrelay.tools.local.local import app_secret_name

    monkeypatch.chdir(tmp_path)
    example = re.search(r"```yaml\n(webhook:.*?)```", README, re.S)[1]  # Subscriptions' example file
    (tmp_path / "x-subscriptions.yaml").write_text(example)
    sm = client("secretsmanager")  # the app's OAuth 2.0 client, which `users login` needs
    secret = json.loads(sm.get_secret_value(SecretId=app_secret_name("xrelay"))["SecretString"])
    sm.put_secret_value(SecretId=app_secret_name("xrelay"),
                        SecretString=json.dumps({**secret, "client_id": fake_x.client_id,
                                                 "client_secret": fake_x.client_secret}))
    monkeypatch.setenv("X_OAUTH2_AUTHORIZE_URL", str(httpx.URL(__import__("os").environ["X_API_BASE_URL"]))
                       .rstrip("/") + "/i/oauth2/authorize")
    monkeypatch.setattr("webbrowser.open", lambda url: httpx.get(url, follow_redirects=True, timeout=10))
    server = stack.http_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served = f"http://127.0.0.1:{server.server_address[1]}/webhook"

    ran = []
    for command in by_program("xrelay"):
        argv = command[1:]
        if argv[:2] == ["users", "login"]:
            fake_x.signed_in_user = argv[2]
            argv = [*argv, "--port", "0", "--timeout", "10"]  # any free port: the fake accepts any callback
        if argv == ["doctor"]:
            argv = [*argv, "--url", served]  # the example's URL is not this machine's
        code = main(argv)
        assert code == (1 if argv[0] == "doctor" else 0), (command, capsys.readouterr())
        ran.append(argv[0] + " " + argv[1] if len(argv) > 1 and not argv[1].startswith("-") else argv[0])
    server.shutdown()
    out = capsys.readouterr().out
    assert "desired state stored" in out and "user 4337869213 authorised (oauth2" in out
    assert "FAIL  webhook at X: not registered at X" in out  # no reconcile has run yet: the doctor says so
    assert ran == ["outputs", "subscriptions apply", "users login", "subscriptions status", "doctor"]
