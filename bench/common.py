"""What every bench section shares: the environment (set before anything imports boto3 or xrelay),
the fixtures, the Lambda environment of a function, a fresh interpreter, and the report's tables.

Imported first by each section (bench/<section>.py) and by bench/run.py, which runs them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "xrelay"
FUNCTIONS = ROOT / "functions"
FIXTURES = ROOT / "tests" / "fixtures"
REGION = "us-east-1"
ACCOUNT = "123456789012"
RETENTION_DAYS = 30  # the template's default RetentionDays
FIXED_NOW = datetime(2026, 1, 1, tzinfo=UTC)  # section 4 sizes must not depend on today's date

# Before anything imports boto3 or xrelay: throwaway credentials, no user config, no endpoint override.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "X_CONSUMER_SECRET"):
    os.environ.pop(_var, None)
os.environ.update(
    AWS_DEFAULT_REGION=REGION,
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    POWERTOOLS_METRICS_NAMESPACE="xrelay",
    POWERTOOLS_DEV="false",
    STAGE="dev",
    # As in tests/conftest.py: moto's in-process mock serves DynamoDB Streams on this endpoint only.
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS=f"https://streams.dynamodb.{REGION}.amazonaws.com",
)
sys.path.insert(0, str(LAYER))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Powertools warns on every invocation that emits no metric (e.g. a control message); not news here.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_stdout():
    """Send fd 1 to /dev/null: the handlers log and print EMF metrics to stdout, as in Lambda."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def fixture_paths() -> list[Path]:
    return sorted(p for sub in ("xaa", "aaa", "other") for p in (FIXTURES / sub).glob("*.json"))


def fixture_name(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def wire_body(path: Path) -> bytes:
    """A fixture as X sends it: compact JSON (the files are pretty-printed for reading)."""
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":"), ensure_ascii=False).encode()



def lambda_env(function: str) -> dict[str, str]:
    """What the template (Globals + the function) sets, with plausible values; no user environment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": "/tmp",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "STAGE": "dev",
        "EVENTS_TABLE": "xrelay-EventsTable-BENCH",
        "STATE_TABLE": "xrelay-StateTable-BENCH",
        "EVENTS_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/xrelay-EventsQueue-BENCH",
        "X_APP_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:xrelay/x-app-AbCdEf",
        "RETENTION_DAYS": str(RETENTION_DAYS),
        "SECRET_CACHE_SECONDS": "300",
        "XRELAY_TRACING": "false",
        "POWERTOOLS_METRICS_NAMESPACE": "xrelay",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": function,
    }


def run_python(code: str, env: dict[str, str]) -> tuple[float, str]:
    """Wall milliseconds of one fresh interpreter running ``code`` (and its stdout)."""
    # -P: do not put the cwd on sys.path, so nothing but the function dir can shadow a module.
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"cold-import probe failed:\n{done.stderr}")
    return elapsed, done.stdout



def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def spread(values: list[float]) -> str:
    return f"{values[0]:.0f}-{values[1]:.0f}"

