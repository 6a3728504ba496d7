"""Trim X's OpenAPI spec to what xrelay's X client calls, for the tests (tests/spec/x-openapi.json).

    .venv/bin/python tests/spec/trim_openapi.py /path/to/x-openapi.json tests/spec/x-openapi.json

Keeps the operations of :class:`xrelay.subscriptions.xapi.Endpoint` (method and path; the OAuth 2.0 token endpoint
is not in X's spec) and every component they reference, transitively; everything else is dropped,
nothing is edited. ``info.x-trimmed-from`` records the source's version and sha256, so a re-trim of
a newer spec shows up in the diff. tests/test_xspec.py checks that the copy is closed (every
``$ref`` resolves), covers every endpoint, and that trimming it again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "layers" / "xrelay"))

from xrelay.subscriptions.xapi import Endpoint  # noqa: E402

# Not X API v2: OAuth's own endpoint, absent from the spec.
NOT_IN_SPEC = {Endpoint.OAUTH2_TOKEN}


def spec_operations() -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every endpoint the client calls and the spec declares."""
    operations = []
    for endpoint in Endpoint:
        if endpoint in NOT_IN_SPEC:
            continue
        path = re.sub(r":([a-z_]+)", r"{\1}", endpoint.value.split(" ", 1)[1])
        operations.append((endpoint.method.lower(), path))
    return operations


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _pointer(document: dict[str, Any], ref: str) -> tuple[str, ...]:
    if not ref.startswith("#/"):
        raise ValueError(f"external $ref {ref!r}: the trim handles local references only")
    parts = tuple(part.replace("~1", "/").replace("~0", "~") for part in ref[2:].split("/"))
    node: Any = document
    for part in parts:
        node = node[part]  # KeyError: a dangling reference in the source
    return parts


def trim(spec: dict[str, Any], source_sha256: str | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in spec_operations():
        item = spec["paths"][path]
        paths.setdefault(path, {k: v for k, v in item.items() if k == "parameters"})[method] = item[method]
    # The security schemes the operations name are components too (referenced by name, not $ref).
    schemes = {name for _, path in spec_operations() for method in paths[path] if method != "parameters"
               for requirement in paths[path][method].get("security", []) for name in requirement}
    wanted = {("securitySchemes", name) for name in schemes}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = _pointer(spec, ref)
        if parts[0] != "components" or len(parts) != 3:
            raise ValueError(f"unexpected $ref {ref!r}")
        wanted.add(parts[1:])
        pending |= _refs(spec["components"][parts[1]][parts[2]])
    components: dict[str, dict[str, Any]] = {}
    for section, name in sorted(wanted):
        components.setdefault(section, {})[name] = spec["components"][section][name]
    info = dict(spec["info"])
    if source_sha256 is not None:
        info["x-trimmed-from"] = {"version": spec["info"].get("version"), "sha256": source_sha256}
    ordered_paths = {path: paths[path] for path in sorted(paths)}
    return {"openapi": spec["openapi"], "info": info, "servers": spec.get("servers", []), "paths": ordered_paths,
            "components": components}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    raw = Path(argv[0]).read_bytes()
    trimmed = trim(json.loads(raw), hashlib.sha256(raw).hexdigest())
    Path(argv[1]).write_text(json.dumps(trimmed, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
