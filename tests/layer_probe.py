"""Run one function of the template as Lambda would see it with only its attached layers.

``python tests/layer_probe.py FUNCTION REFUSED_JSON PARAMETERS_JSON`` (tests/test_layers.py runs it
in a fresh interpreter): a moto stack is provisioned from template.yaml, then every module of the
REFUSED packages (those of the layers FUNCTION does not attach, and xrelay.tools, which no layer
ships) is forgotten and refused
at import, as a missing layer would be in Lambda (ModuleNotFoundError). The function's module is
then imported and invoked with a representative trigger; the result is printed as one JSON line.
The xrelay package is imported afresh under the refusal, so a lazy import inside it counts too.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_X = "http://127.0.0.1:9"  # nothing listens: the X client's whole path runs, no network


class RefuseUnattached(importlib.abc.MetaPathFinder):
    def __init__(self, refused: set[str]):
        self.refused = refused
        self.attempts: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == name or fullname.startswith(name + ".") for name in self.refused):
            self.attempts.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (its layer is not attached)", name=fullname)
        return None


def forget(refused: set[str]) -> None:
    """The harness (moto, LocalStack) may have imported them: drop them so the function imports afresh."""
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in refused or top == "xrelay":
            del sys.modules[name]


def triggers(function: str) -> list[dict]:
    """Representative events, invoked in order: what the function is invoked with on AWS."""
    from conftest import fixture_bytes
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign
    from xrelay.tools.local.local import DEV_CONSUMER_SECRET, api_event
    from xrelay.tools.local.samples import load_event

    if function == "IntakeFunction":
        body = fixture_bytes("xaa/01_post.create.json")
        return [api_event("POST", "/webhook", "", {"content-type": "application/json",
                                                    SIGNATURE_HEADER: sign(DEV_CONSUMER_SECRET, body)}, body)]
    if function == "ReplayFunction":  # the intake alarm's outage, 20 minutes to 1 minute ago: replay it
        return [load_event(ROOT / "events" / f"ReplayFunction-{state}.json") for state in ("alarm", "ok")]
    return [load_event(ROOT / "events" / f"{function}.json")]


def main() -> None:
    function, refused = sys.argv[1], set(json.loads(sys.argv[2]))
    parameters = json.loads(sys.argv[3])
    os.environ.update(X_API_BASE_URL=UNREACHABLE_X, X_CONSUMER_KEY="probe-key", X_BEARER_TOKEN="probe-bearer")
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "layers" / "xrelay")]
    from moto import mock_aws

    import conftest  # noqa: F401  (the tests' AWS environment: dummy credentials, no endpoint override)
    from xrelay.aws import client
    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()
        stack = LocalStack(ROOT, "xrelay")
        stack.provision(parameters)
        if function == "ReconcileFunction":  # a declared state, so the run goes to X (unreachable)
            from conftest import apply_desired

            apply_desired(Path(os.environ["PROBE_TMP"]))
        events = triggers(function)
        finder = RefuseUnattached(refused)
        forget(refused)
        sys.meta_path.insert(0, finder)
        for event in events:
            result = stack.invoke(function, event)
        sys.meta_path.remove(finder)
    loaded = sorted(name for name in refused
                    if any(m == name or m.startswith(name + ".") for m in sys.modules))
    print(json.dumps({"result": result, "refused_attempts": finder.attempts, "refused_loaded": loaded},
                     default=str))


if __name__ == "__main__":
    main()
