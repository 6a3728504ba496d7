"""``xrelay doctor``: a preflight of a deployed (or local) stack, each check with a next step.

``xrelay status`` answers "am I losing events?" from what the stack recorded; the doctor asks
the live system instead, the way X will: it reads the app secret, sends the public URL a CRC and
a signed (empty) delivery, asks X about the webhook and the subscriptions, and compares the
account's Lambda concurrency quota with what the stack reserves. The CRC and the test delivery
follow the stack's signing configuration (README: X's two signing schemes): the CRC is checked
against the secret ``CrcSigningSecret`` chooses, the delivery carries the OAuth 2.0 header when
the app secret holds a client secret and the legacy one when it holds a consumer secret. Nothing it does reaches the
consumers: the test delivery carries no event, and the reconcile is only planned (dry run).

Exit code: 0 when no check fails (warnings included), 1 when one fails, 2 when the stack is not
found. ``--json`` prints the :class:`DoctorReport` (docs/schemas/doctor.schema.json).
"""

from __future__ import annotations

import argparse
import hmac
import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from xrelay.credentials import (
    CRC_AUTO,
    CRC_CLIENT_SECRET,
    SecretUnavailable,
    SigningSecrets,
    crc_answering_field,
    crc_secret_advice,
)
from xrelay.receiving.signature import (
    LEGACY,
    LEGACY_HEADER,
    OAUTH2,
    OAUTH2_HEADER,
    SCHEME_HEADERS,
    SCHEME_SECRETS,
    sign,
)
from xrelay.receiving.signing_log import DOCTOR_PROBE

Status = Literal["pass", "warn", "fail", "skip"]
# Lambda keeps at least this many executions unreserved (fewer on an account whose quota is lower).
UNRESERVED_MINIMUM = 100
# X replays at up to 2,500 deliveries per second; at intake's ~0.08 s that is ~200 at once, and
# the account's other functions need theirs: AWS's usual quota of 1,000 covers it, 10 does not.
RECOMMENDED_QUOTA = 1000
# An AAA delivery shape with no event: intake verifies it, stores nothing, records no signing
# scheme (it is not X's) and answers 200.
EMPTY_DELIVERY = DOCTOR_PROBE
# What each field of the app secret is for, in the order they are reported.
SECRET_FIELDS = {
    "consumer_secret": "checks X's legacy delivery signature; answers the CRC when there is no client_secret",
    "previous_consumer_secret": "rotation in progress: legacy signatures made with the old secret are accepted",
    "client_secret": "checks X's OAuth 2.0 delivery signature and answers the CRC; OAuth 2.0 confidential client",
    "previous_client_secret": "rotation in progress: OAuth 2.0 signatures made with the old secret are accepted",
    "consumer_key": "OAuth 1.0a user context (the reconcile)",
    "bearer_token": "app-only calls (the reconcile, the replay)",
    "client_id": "OAuth 2.0 client (users' token refresh, `xrelay users login`)",
}
SCHEME_NAMES = {OAUTH2: "OAuth 2.0", LEGACY: "legacy"}


class Check(BaseModel):
    name: str = Field(description="what was checked")
    status: Status
    detail: str = Field(description="what was found")
    next_step: str | None = Field(default=None, description="what to do about it (null when nothing)")


class DoctorReport(BaseModel):
    stack: str
    url: str | None = Field(description="the webhook URL the CRC and delivery checks used")
    checks: list[Check]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No check failed (warnings and skips allowed)."""
        return all(c.status != "fail" for c in self.checks)


def add_doctor_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="preflight: secret, signing schemes, CRC, signed delivery, webhook at X, "
                                      "subscriptions, alarms, concurrency (exit 1 when a check fails)")
    p.add_argument("--stack-name", default=argparse.SUPPRESS, help="CloudFormation stack (default: samconfig.toml's)")
    p.add_argument("--url", help="the webhook URL to test (default: the desired state's, else the WebhookUrl output)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/schemas/doctor.schema.json)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from xrelay.tools.cli.cli import _aws_env

    _aws_env()
    report = run(args.stack_name, url=args.url)  # an unknown stack: the CLI's one error mapping (exit 2)
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0 if report.ok else 1


def render(report: DoctorReport) -> str:
    lines = [f"xrelay doctor: stack {report.stack}" + (f", webhook {report.url}" if report.url else "")]
    for check in report.checks:
        lines.append(f"{check.status.upper():<4}  {check.name}: {check.detail}")
        if check.next_step:
            lines.append(f"      next: {check.next_step}")
    failed = sum(c.status == "fail" for c in report.checks)
    warned = sum(c.status == "warn" for c in report.checks)
    lines.append("all checks passed" if not failed and not warned else f"{failed} failed, {warned} warning(s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the run


def run(stack_name: str, *, url: str | None = None, http: Any = None, lambda_client: Any = None) -> DoctorReport:
    """Every check against the stack ``stack_name``; CloudFormation's ValidationError when there is no such stack."""
    from xrelay.aws import client
    from xrelay.tools.cli.cli import _stack_settings
    from xrelay.tools.cli.stack import Stack

    stack = Stack(stack_name)
    params = stack.parameters()
    settings = _stack_settings(stack_name)
    checks: list[Check] = []
    from aws_lambda_powertools.utilities import parameters
    parameters.clear_caches()  # what the secret holds now, not what this process read before

    secret_check, signing = app_secret_check(settings.app_secret_arn)
    checks.append(secret_check)
    crc_choice = params.get("CrcSigningSecret") or CRC_AUTO
    checks.append(signing_check(signing, crc_choice))

    from xrelay.subscriptions.reconcile import run_for_stack
    plan = run_for_stack(settings, dry_run=True)
    desired_url = plan.desired.webhook.url if plan.desired else None
    if url is None:
        url = desired_url or _output(stack, "WebhookUrl")

    if http is None:
        import httpx
        http = httpx.Client(timeout=10.0)
    checks.append(crc_check(http, url, signing, crc_choice))
    checks.append(delivery_check(http, url, signing))
    checks.extend(x_checks(plan))
    topic = stack.resources.get("AlarmTopic")
    checks.append(alarm_topic_check(client("sns"), topic) if topic else Check(
        name="alarm topic", status="skip", detail="the stack has no alarm topic (the local stack creates none)"))
    checks.append(concurrency_check_for(lambda_client or client("lambda"), params))
    return DoctorReport(stack=stack_name, url=url, checks=checks)


def _output(stack: Any, key: str) -> str | None:
    try:
        return stack.output(key)
    except Exception:
        return None


# ---------------------------------------------------------------------------- the checks


def app_secret_check(secret_id: str) -> tuple[Check, SigningSecrets | None]:
    """Readable and well formed; which fields it holds. Also its signing secrets, for the CRC and the delivery."""
    from xrelay.aws import client, error_code
    from xrelay.credentials import APP_REQUIRED_FIELDS

    name = "app secret"
    if not secret_id:
        return Check(name=name, status="fail", detail="the stack has no XAppSecretArn",
                     next_step="deploy with XAppSecretArn (samconfig.toml)"), None
    sm = client("secretsmanager")
    try:
        value = sm.get_secret_value(SecretId=secret_id)
    except Exception as exc:
        code = error_code(exc) or type(exc).__name__
        step = {
            "ResourceNotFoundException": "create it (README: Deploy, step 1) or fix XAppSecretArn",
            "AccessDeniedException": "your credentials may not read it (the functions' roles can: "
                                     "AppSecretReadPolicy); run the doctor with credentials that can",
            "DecryptionFailure": "its KMS key's policy must let the account's IAM policies grant kms:Decrypt "
                                 "(the default key policy does)",
        }.get(code, "check the secret in the Secrets Manager console")
        return Check(name=name, status="fail", detail=f"{secret_id} cannot be read ({code})", next_step=step), None
    text = value.get("SecretString") or ""
    try:
        doc = json.loads(text) if text.strip().startswith("{") else None
    except ValueError:
        return Check(name=name, status="fail", detail="it looks like JSON but does not parse",
                     next_step="store a JSON object (README: Deploy, step 1)"), None
    if doc is None:
        return Check(name=name, status="warn", detail="a bare string: the CRC and intake can sign with it, the "
                     "reconcile and the replay cannot work",
                     next_step="store the JSON object of README: Deploy, step 1"), _signing(text)
    present = [f for f in SECRET_FIELDS if isinstance(doc.get(f), str) and doc.get(f)]
    configured = "; ".join(f"{f} ({SECRET_FIELDS[f]})" for f in present)
    missing = [f for f in APP_REQUIRED_FIELDS if f not in present]
    signing = _signing(text)
    key_note = ""
    try:
        key = sm.describe_secret(SecretId=secret_id).get("KmsKeyId")
        key_note = f"; encrypted with {key}" if key else "; encrypted with aws/secretsmanager"
    except Exception:  # describing is a nicety; reading it is what counts
        pass
    if missing:
        return Check(name=name, status="fail", detail=f"{value['ARN']} lacks {', '.join(missing)}; has: "
                     f"{configured or 'nothing usable'}{key_note}",
                     next_step="add the missing fields (README: Deploy, step 1)"), signing
    return Check(name=name, status="pass", detail=f"{value['ARN']}: {configured}{key_note}"), signing


def _signing(text: str) -> SigningSecrets | None:
    """The signing secrets as the CRC and intake read them (None: neither consumer nor client secret)."""
    try:
        return SigningSecrets.parse(text)
    except SecretUnavailable:
        return None


def signing_check(signing: SigningSecrets | None, crc_choice: str) -> Check:
    """Which of X's two schemes the app secret configures, rotations under way, and which secret answers the CRC."""
    name = "signing schemes"
    if signing is None:
        return Check(name=name, status="fail", detail="the app secret holds neither consumer_secret nor client_secret",
                     next_step="add the app's API Key Secret (consumer_secret) and, with OAuth 2.0, its Client "
                               "Secret (client_secret) (README: X's two signing schemes)")
    schemes = [s for s, secrets in ((OAUTH2, signing.client_secrets), (LEGACY, signing.consumer_secrets)) if secrets]
    detail = " and ".join(f"{SCHEME_NAMES[s]} ({SCHEME_HEADERS[s]}, {SCHEME_SECRETS[s]})" for s in schemes)
    rotating = [f for f, secrets in (("previous_client_secret", signing.client_secrets),
                                     ("previous_consumer_secret", signing.consumer_secrets)) if len(secrets) > 1]
    if rotating:
        detail += "; rotation under way: " + ", ".join(rotating) + " still accepted"
    try:
        answered_by, _ = signing.crc_secret(crc_choice)
    except SecretUnavailable as exc:
        field = crc_answering_field(crc_choice, bool(signing.client))
        return Check(name=name, status="fail", detail=f"{detail}; {exc}",  # the CRC answers 503: X would fail it
                     next_step=f"add {field} to the app secret, or deploy with CrcSigningSecret=auto")
    return Check(name=name, status="pass", detail=f"{detail}; the CRC answers with {answered_by} "
                                                  f"(CrcSigningSecret={crc_choice})")


def _same(answer: Any, expected: str) -> bool:
    """The CRC's answer against an expected HMAC, in constant time like every MAC check in xrelay
    (tests/test_guards_signing.py lints for it)."""
    return isinstance(answer, str) and hmac.compare_digest(answer.encode(), expected.encode())


def _https_or_warn(url: str, check: Check) -> Check:
    if check.status == "pass" and not url.lower().startswith("https://"):
        return Check(name=check.name, status="warn", detail=check.detail + ", but not over HTTPS",
                     next_step="X registers https:// URLs only: use the stack's WebhookUrl (or a custom domain)")
    return check


def crc_check(http: Any, url: str | None, signing: SigningSecrets | None, crc_choice: str = CRC_AUTO) -> Check:
    """The URL answers a CRC with the HMAC of the secret ``crc_choice`` (CrcSigningSecret) picks."""
    name = "CRC"
    if not url:
        return Check(name=name, status="fail", detail="no webhook URL known",
                     next_step="`xrelay subscriptions apply FILE` with webhook.url = `xrelay outputs WebhookUrl`")
    try:
        expected_field, expected_secret = signing.crc_secret(crc_choice) if signing else ("", "")
    except SecretUnavailable:
        expected_field = ""
    if not expected_field:
        return Check(name=name, status="skip", detail="no secret to check the answer against (see signing schemes)")
    token = secrets.token_urlsafe(24)
    try:
        response = http.get(url, params={"crc_token": token})
    except Exception as exc:
        return Check(name=name, status="fail", detail=f"GET {url} failed: {type(exc).__name__}",
                     next_step="check the URL and that the stack is deployed (`xrelay outputs WebhookUrl`)")
    elapsed = response.elapsed.total_seconds() if hasattr(response, "elapsed") else 0.0
    try:
        answer = response.json().get("response_token")
    except ValueError:
        answer = None
    if response.status_code != 200 or answer is None:
        step = ("the app secret is unreadable by the CRC function: read its log (SecretFailures)"
                if response.status_code == 503 else "read the CRC function's log")
        return Check(name=name, status="fail", detail=f"GET answered {response.status_code}, no response_token",
                     next_step=step)
    if not _same(answer, sign(expected_secret, token.encode())):
        assert signing is not None
        others = {CRC_CLIENT_SECRET: signing.client, "consumer_secret": signing.consumer}
        answered_by = [f for f, value in others.items() if f != expected_field and value
                       and _same(answer, sign(value, token.encode()))]
        detail = (f"answered with the {answered_by[0]}'s HMAC, not the {expected_field}'s "
                  f"(CrcSigningSecret={crc_choice})" if answered_by else
                  f"answered with an HMAC of neither secret (expected the {expected_field}'s)")
        step = ("the URL's stack reads another CrcSigningSecret (a local CRC_SIGNING_SECRET?) or another app secret"
                if answered_by else
                "X would mark the webhook invalid: " + crc_secret_advice(crc_choice, bool(signing.client)))
        return Check(name=name, status="fail", detail=detail, next_step=step)
    check = Check(name=name, status="pass",
                  detail=f"answered with the {expected_field}'s HMAC in {elapsed * 1000:.0f} ms")
    if elapsed > 2.0:
        check = Check(name=name, status="warn", detail=check.detail + " (X allows about 3 seconds)",
                      next_step="cold starts: see README, Runtime and architecture; reserve CrcReservedConcurrency")
    return _https_or_warn(url, check)


def delivery_check(http: Any, url: str | None, signing: SigningSecrets | None) -> Check:
    """A delivery that carries no event, signed as X signs it for this app secret, is accepted; forged ones refused.

    X puts the OAuth 2.0 header on deliveries of an app with OAuth 2.0 and the legacy one besides;
    the test delivery carries each header whose secret is configured. Forged: every header wrong,
    and (with both schemes) a wrong OAuth 2.0 header beside a right legacy one, which intake must
    not accept by falling back to the legacy scheme.
    """
    name = "signed delivery"
    if not url or signing is None:
        return Check(name=name, status="skip", detail="no webhook URL or signing secret")
    body = json.dumps(EMPTY_DELIVERY).encode()
    keys = {OAUTH2_HEADER: signing.client, LEGACY_HEADER: signing.consumer}
    right = {header: sign(key, body) for header, key in keys.items() if key}
    forgeries = {"forged": {header: sign("not-the-secret", body) for header in right}}
    if len(right) == 2:
        forgeries["a forged OAuth 2.0 signature beside a right legacy one"] = {
            **right, OAUTH2_HEADER: sign("not-the-secret", body)}
    headers = {"content-type": "application/json"}
    try:
        signed = http.post(url, content=body, headers={**headers, **right})
        refused = {what: http.post(url, content=body, headers={**headers, **forged}).status_code
                   for what, forged in forgeries.items()}
    except Exception as exc:
        return Check(name=name, status="fail", detail=f"POST {url} failed: {type(exc).__name__}",
                     next_step="check the URL and that the stack is deployed")
    if signed.status_code != 200:
        step = {503: "intake could not read the secret or the store: read its log (SecretFailures, StoreFailures)",
                401: "intake found no signature it can check: is the stack deployed from this version "
                     "(README: X's two signing schemes)?",
                403: "intake refused the signature: the deployed app secret is not the one the doctor read"}.get(
            signed.status_code, "read the intake function's log")
        return Check(name=name, status="fail", detail=f"a delivery signed with {' and '.join(right)} got "
                     f"{signed.status_code}", next_step=step)
    accepted = [f"{what} got {status}" for what, status in refused.items() if status not in (401, 403)]
    if accepted:
        return Check(name=name, status="fail", detail="; ".join(accepted) + " (not 401/403)",
                     next_step="the URL does not verify X's signatures as this xrelay does: is it this stack's "
                               "WebhookUrl, and is the stack deployed from this version?")
    return _https_or_warn(url, Check(name=name, status="pass", detail=f"a delivery signed with {' and '.join(right)} "
                                     "(no events) was accepted, forged ones refused"))


def x_checks(plan: Any) -> list[Check]:
    """The desired state, the webhook at X, and the subscriptions, from one dry-run reconcile."""
    if plan.desired is None:
        step = "`xrelay subscriptions apply FILE` (README: Subscriptions)"
        return [Check(name="desired state", status="fail", detail="none stored", next_step=step),
                Check(name="webhook at X", status="skip", detail="no desired webhook"),
                Check(name="subscriptions", status="skip", detail="no desired state")]
    checks = [Check(name="desired state", status="pass", detail=f"webhook {plan.desired.webhook.url}, "
                    f"{len(plan.desired.account_activity)} AAA user(s), {len(plan.desired.activity)} XAA "
                    "subscription(s)")]
    if plan.error:
        if "credentials" in plan.error:
            step = "fix the app secret (above)"
        elif "401" in plan.error or "Unauthorized" in plan.error:
            step = ("X refused the app's credentials: the secret's consumer_key, consumer_secret and bearer_token "
                    "are not the app's (X developer portal: Keys and tokens)")
        else:
            step = "retry later; `xrelay status` shows the reconcile's last runs"
        return checks + [Check(name="webhook at X", status="fail", detail=plan.error, next_step=step),
                         Check(name="subscriptions", status="skip", detail="X could not be asked")]
    if plan.idle:
        return checks + [Check(name="webhook at X", status="skip", detail=plan.idle),
                         Check(name="subscriptions", status="skip", detail=plan.idle)]
    hook = plan.observation.webhook if plan.observation else None
    if hook is None:
        checks.append(Check(name="webhook at X", status="fail", detail="not registered at X",
                            next_step="the next reconcile registers it; `xrelay invoke ReconcileFunction` does it now"))
    elif hook.valid is False:
        checks.append(Check(name="webhook at X", status="fail", detail=f"{hook.id} is marked invalid by X",
                            next_step="make the CRC check pass, then the reconcile asks X to re-validate it "
                                      "(`xrelay invoke ReconcileFunction`)"))
    else:
        checks.append(Check(name="webhook at X", status="pass", detail=f"{hook.id} registered and valid"))
    p = plan.report.plan
    if p.needs_authorization:
        checks.append(Check(name="subscriptions", status="warn",
                            detail=f"users needing authorisation: {', '.join(sorted(p.needs_authorization))}",
                            next_step="`xrelay users login USER_ID` (or `xrelay users authorize USER_ID`) for each"))
    elif p.drift:
        checks.append(Check(name="subscriptions", status="warn",
                            detail=f"{p.drift} difference(s) between the desired state and X",
                            next_step="the next reconcile applies them; `xrelay subscriptions status` shows the plan"))
    else:
        checks.append(Check(name="subscriptions", status="pass",
                            detail=f"in sync ({p.desired_count} desired, {p.actual_count} at X)"))
    return checks


def alarm_topic_check(sns: Any, topic_arn: str) -> Check:
    name = "alarm topic"
    try:
        subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    except Exception as exc:
        return Check(name=name, status="warn", detail=f"cannot list its subscriptions ({type(exc).__name__})",
                     next_step="check in the SNS console that someone receives the alarms")
    pending = ("PendingConfirmation", "Deleted")
    confirmed = [s for s in subs if not str(s.get("SubscriptionArn", "")).startswith(pending)]
    if confirmed:
        return Check(name=name, status="pass",
                     detail=f"{len(confirmed)} subscriber(s): {', '.join(sorted({s['Protocol'] for s in confirmed}))}")
    if subs:
        return Check(name=name, status="warn", detail="the subscription is not confirmed yet",
                     next_step="confirm it from the e-mail AWS sent (AlarmEmail)")
    return Check(name=name, status="warn", detail="nobody receives the alarms",
                 next_step=f"deploy with AlarmEmail, or subscribe an endpoint to {topic_arn}")


def concurrency_check(quota: int, reserved: int) -> Check:
    """The account's concurrency quota against what the stack reserves (IntakeReserved + CrcReserved)."""
    name = "concurrency"
    floor = min(UNRESERVED_MINIMUM, quota)
    if reserved and quota - reserved < floor:
        return Check(name=name, status="fail",
                     detail=f"the stack reserves {reserved} of a quota of {quota}; Lambda keeps {floor} unreserved",
                     next_step=f"request a quota of at least {reserved + UNRESERVED_MINIMUM} (Service Quotas, "
                               "Lambda, Concurrent executions), or set the reservations to 0")
    if quota < RECOMMENDED_QUOTA:
        return Check(name=name, status="warn",
                     detail=f"quota {quota} concurrent executions, {reserved} reserved by the stack: X's replays "
                            "(up to 2,500 deliveries per second) would be throttled, and lost",
                     next_step=f"request a quota of {RECOMMENDED_QUOTA} or more (Service Quotas, Lambda, Concurrent "
                               "executions); then reserve IntakeReservedConcurrency=300, CrcReservedConcurrency=10")
    note = "" if reserved else "; nothing reserved (IntakeReservedConcurrency=300 caps what a flood can take)"
    return Check(name=name, status="pass", detail=f"quota {quota}, {reserved} reserved by the stack{note}")


def concurrency_check_for(lambda_client: Any, params: dict[str, str]) -> Check:
    try:
        settings = lambda_client.get_account_settings()["AccountLimit"]
    except Exception as exc:
        return Check(name="concurrency", status="skip",
                     detail=f"the account's Lambda settings could not be read ({type(exc).__name__}; the local "
                            "stack has none)")
    # Endpoint=FunctionUrl: one WebhookFunction under IntakeReservedConcurrency; no CrcFunction to reserve for.
    reserving = ("IntakeReservedConcurrency",) if params.get("Endpoint") == "FunctionUrl" else \
        ("IntakeReservedConcurrency", "CrcReservedConcurrency")
    reserved = sum(int(params.get(p) or 0) for p in reserving)
    return concurrency_check(int(settings["ConcurrentExecutions"]), reserved)

