"""What ``xrelay local`` prints: one concise line per request or invocation.

The functions log as they do in Lambda (a JSON line per log call, EMF metric blobs, library
warnings): 3 to 5 lines per request that bury the one a person wants. While a function runs,
whatever it writes to stdout or stderr goes to a log file (``<state dir>/<stack>.log``) instead,
or to the console as well with ``--logs``; the console gets::

    [http] POST /webhook -> 200  1 new, 0 duplicate  12 ms
    [stream] PublisherFunction 1 record(s) -> ok  8 ms
    [schedule] ReconcileFunction -> ok: idle (no desired state)  40 ms
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


class _Router:
    """A stdout/stderr stand-in: inside an invocation its writes go to the log (and, echoing, through)."""

    def __init__(self, console: Console, real: TextIO):
        self._console, self._real = console, real

    def write(self, text: str) -> int:
        if self._console.inside():
            self._console.log_write(text)
            if not self._console.echo:
                return len(text)
        return self._real.write(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding ...
        return getattr(self._real, name)


class Console:
    def __init__(self, log_path: Path | None, echo: bool = False):
        self.log_path, self.echo = log_path, echo
        self._local = threading.local()
        self._log: TextIO | None = None
        self._log_lock = threading.Lock()
        self._out: TextIO = sys.stdout

    def install(self) -> None:
        """Route this process's stdout and stderr (before the functions' modules, which keep a reference)."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", buffering=1)
        self._out = sys.stdout
        sys.stdout = _Router(self, sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Router(self, sys.stderr)  # type: ignore[assignment]

    def inside(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def invocation(self) -> Iterator[None]:
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def log_write(self, text: str) -> None:
        if self._log is not None:
            with self._log_lock:
                self._log.write(text)

    def line(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def report(self, function: str, event: Any, result: Any, error: BaseException | None, seconds: float) -> None:
        self.line(describe(function, event, result, error, seconds))


def describe(function: str, event: Any, result: Any, error: BaseException | None, seconds: float) -> str:
    """One line for one invocation, from its trigger's shape and its result."""
    took = f"{seconds * 1000:.0f} ms"
    event = event if isinstance(event, dict) else {}
    result_dict = result if isinstance(result, dict) else {}
    http = event.get("requestContext", {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    if http:
        head = f"[http] {http.get('method')} {http.get('path')} ->"
        if error is not None:
            return f"{head} 500 ({function} raised {type(error).__name__}: {error})  {took}"
        status = result_dict.get("statusCode", 200)
        detail = _http_detail(result_dict)
        return f"{head} {status}" + (f"  {detail}" if detail else "") + f"  {took}"
    records = event.get("Records")
    if isinstance(records, list):
        head = f"[stream] {function} {len(records)} record(s) ->"
        if error is not None:
            return f"{head} raised {type(error).__name__}: {error}  {took}"
        failures = result_dict.get("batchItemFailures") or []
        return f"{head} {f'{len(failures)} failed' if failures else 'ok'}  {took}"
    kind = "schedule" if event.get("detail-type") == "Scheduled Event" else "invoke"
    head = f"[{kind}] {function} ->"
    if error is not None:
        return f"{head} raised {type(error).__name__}: {error}  {took}"
    if result_dict.get("ok") is False:
        return f"{head} failed: {str(result_dict.get('error') or 'see the log')[:160]}  {took}"
    idle = result_dict.get("idle")
    return f"{head} ok" + (f": idle ({_cut(str(idle), 200)})" if idle else "") + f"  {took}"


def _http_detail(result: dict[str, Any]) -> str:
    try:
        body = json.loads(result.get("body") or "{}")
    except (TypeError, ValueError):
        return ""
    if not isinstance(body, dict):
        return ""
    if "new" in body and "duplicates" in body:
        detail = f"{body['new']} new, {body['duplicates']} duplicate"
        if body.get("errors"):
            detail += f", {len(body['errors'])} error(s)"
        return detail
    error = body.get("error") or body.get("message")
    return str(error)[:120] if error else ""


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
