"""The desired-state file of ``xrelay subscriptions apply FILE``: parse, validate, normalise.

The file declares the webhook X delivers to, the users whose Account Activity (AAA) we receive,
and the X Activity API (XAA) subscriptions; ``apply`` later reconciles X against it. This module
is pure (no AWS, no X): :func:`load_desired` reads the YAML and raises one
:class:`DesiredStateError` listing every problem as ``FILE:LINE: message``, so a user fixes the
file in one pass. Event types and their per-type facts come from :mod:`xrelay.events.event_types`.

PyYAML is a CLI-only dependency (the Lambda layer does not ship it): only :func:`load_desired`
imports it, so the models here load inside a Lambda (the state is stored as JSON).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xrelay.events import event_types

DIRECTIONS = ("inbound", "outbound")
TAG_MAX = 200  # OAS: tag 1-200 chars
KEYWORD_MAX = 150  # OAS: keyword 1-150 chars
URL_MAX = 200  # OAS: webhook url 1-200 chars

TOP_KEYS = ("webhook", "account_activity", "activity", "prune")
WEBHOOK_KEYS = ("url",)
AAA_KEYS = ("user_id",)
SPEC_KEYS = ("event_type", "filter", "tag")

SubscriptionKey = tuple[str, frozenset[tuple[str, str]]]


# --- Checks shared by the YAML loader (which adds line numbers) and the models (from_json) -----


def _closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> list[str]:
    """The closest candidates to ``word``: the best, and up to two others about as close."""
    word = word.lower()
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in set(candidates)), reverse=True)
    best = scored[0][0] if scored else 1.0
    return [c for score, c in scored[:3] if score >= cutoff and score >= best - 0.05]


def _suggest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)``, or nothing when no candidate is close."""
    close = _closest(word, candidates, cutoff)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def user_id_problem(value: str) -> str | None:
    if event_types.is_x_id(value):
        return None
    return f"user_id {value!r} is not a user id (1-19 digits, as a quoted string)"


def webhook_url_problems(url: str) -> list[str]:
    if not url:
        return ["webhook url is empty"]
    problems = []
    if len(url) > URL_MAX:
        problems.append(f"webhook url is {len(url)} characters; X allows at most {URL_MAX}")
    if any(ch.isspace() for ch in url):
        problems.append("webhook url contains whitespace")
    parts = urlsplit(url)
    if parts.scheme != "https":
        problems.append("webhook url must start with https:// (X delivers to https URLs only)")
    if parts.scheme:  # without one, "example.com/x" is a bare path: host and port checks would be noise
        host_port = parts.netloc.rpartition("@")[2]
        if not parts.hostname:
            problems.append("webhook url has no host")
        # X refuses any explicit port (D-WH: "https://mydomain.com:5000/webhook will not work"), :443 too.
        elif ":" in host_port.rpartition("]")[2]:  # after an IPv6 literal's brackets, if any
            problems.append(f"webhook url must not include a port (X refuses URLs with one): {host_port}")
    return problems


def tag_problem(tag: str) -> str | None:
    if 1 <= len(tag) <= TAG_MAX:
        return None
    return f"tag must be 1-{TAG_MAX} characters, got {len(tag)}"


def event_type_problem(name: str) -> str | None:
    """Why ``name`` cannot be subscribed to, or None. Reads event_types at call time, so a type
    added there is valid here with no change to this module."""
    canonical = event_types.canonical_xaa_type(name)
    if canonical in event_types.XAA_UNSUBSCRIBABLE:
        return f"event_type {name!r} cannot be subscribed to: {event_types.XAA_UNSUBSCRIBABLE[canonical]}; remove it"
    if event_types.is_subscribable(canonical):
        return None
    valid = event_types.subscribable_xaa_types()
    hint = _suggest(name, [*valid, *event_types.XAA_ALIASES], cutoff=0.75)
    return f"unknown event_type {name!r}{hint}; valid: {', '.join(valid)}"


def _types_taking(key: str) -> list[str]:
    return [t for t in event_types.subscribable_xaa_types() if key in event_types.xaa_filter_keys(t).allowed]


def filter_key_problems(event_type: str, keys: Iterable[str]) -> list[tuple[str | None, str]]:
    """(key, message) for each filter key ``event_type`` does not take, and (None, message) for
    the required ones missing. ``event_type`` must be known."""
    rule = event_types.xaa_filter_keys(event_type)
    takes = ", ".join(sorted(rule.allowed)) or "no filter"
    problems: list[tuple[str | None, str]] = []
    keys = list(keys)
    for key in keys:
        if key not in event_types.XAA_FILTER_KEYS:
            hint = _suggest(key, event_types.XAA_FILTER_KEYS)
            problems.append((key, f"unknown filter key {key!r}{hint}; {event_type} takes: {takes}"))
        elif key not in rule.allowed:
            others = _types_taking(key)
            # Name the types that take it when they are few (direction, keyword); not for user_id.
            where = f" (only {', '.join(others)} take it)" if len(others) <= 5 else ""
            message = f"{event_type} does not take filter key {key!r}{where}; {event_type} takes: {takes}"
            problems.append((key, message))
    missing = sorted(rule.required - set(keys))
    if missing:
        problems.append((None, f"{event_type} needs filter key {' and '.join(repr(k) for k in missing)}"))
    return problems


def filter_value_problem(key: str, value: str) -> str | None:
    if key == "user_id":
        return user_id_problem(value)
    if key == "direction" and value not in DIRECTIONS:
        return f"direction {value!r} must be one of: {', '.join(DIRECTIONS)}"
    if key == "keyword" and not 1 <= len(value) <= KEYWORD_MAX:
        return f"keyword must be 1-{KEYWORD_MAX} characters, got {len(value)}"
    return None


def _duplicates(keys: Iterable[Any]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) for every repeat in ``keys``."""
    first: dict[Any, int] = {}
    repeats = []
    for i, key in enumerate(keys):
        if key in first:
            repeats.append((i, first[key]))
        else:
            first[key] = i
    return repeats


def _format_filter(filter_: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(filter_.items())) + "}"


# --- Models: what apply consumes and what is stored as JSON -------------------------------------

_FROZEN = ConfigDict(extra="forbid", frozen=True, strict=True)


class WebhookSpec(BaseModel):
    model_config = _FROZEN

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if problems := webhook_url_problems(url):
            raise ValueError("; ".join(problems))
        return url


class AaaUser(BaseModel):
    model_config = _FROZEN

    user_id: str

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, user_id: str) -> str:
        if problem := user_id_problem(user_id):
            raise ValueError(problem)
        return user_id


class XaaSubscriptionSpec(BaseModel):
    model_config = _FROZEN

    event_type: str  # canonical: aliases are normalised on the way in
    filter: dict[str, str] = Field(default_factory=dict)
    tag: str | None = None

    @field_validator("event_type", mode="before")
    @classmethod
    def _canonical(cls, name: Any) -> Any:
        return event_types.canonical_xaa_type(name) if isinstance(name, str) else name

    @model_validator(mode="after")
    def _check(self) -> XaaSubscriptionSpec:
        problems = [p for p in [event_type_problem(self.event_type)] if p]
        if not problems:
            problems += [message for _, message in filter_key_problems(self.event_type, self.filter)]
        problems += [p for k, v in self.filter.items() if (p := filter_value_problem(k, v))]
        if self.tag is not None and (p := tag_problem(self.tag)):
            problems.append(p)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def key(self) -> SubscriptionKey:
        """Identity for matching desired against X's subscriptions: the tag is not part of it (X
        updates a tag in place); filter values compare as strings."""
        return self.event_type, frozenset((k, str(v)) for k, v in self.filter.items())

    @property
    def needs_user_context(self) -> bool:
        """True: create it with the filtered user's OAuth token (private event); False: Bearer will do."""
        return event_types.needs_user_context(self.event_type)


class DesiredState(BaseModel):
    model_config = _FROZEN

    webhook: WebhookSpec
    account_activity: list[AaaUser] = Field(default_factory=list)
    activity: list[XaaSubscriptionSpec] = Field(default_factory=list)
    prune: bool = False  # delete what X has that is not declared (default: only report it)
    # ``FILE:LINE: message`` notes about the file (aliases, unquoted ids); not part of the state,
    # so neither stored nor read back by to_json/from_json.
    warnings: list[str] = Field(default_factory=list, exclude=True, repr=False)

    @model_validator(mode="after")
    def _no_duplicates(self) -> DesiredState:
        problems = [
            f"account_activity[{i}]: user {self.account_activity[i].user_id} repeats account_activity[{j}]"
            for i, j in _duplicates(u.user_id for u in self.account_activity)
        ] + [
            f"activity[{i}]: subscription repeats activity[{j}] (same event_type and filter)"
            for i, j in _duplicates(s.key() for s in self.activity)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> DesiredState:
        return cls.model_validate_json(text)


# --- Errors ---------------------------------------------------------------------------------------


class Problem(NamedTuple):
    line: int
    message: str


class DesiredStateError(ValueError):
    """Every problem of one file; ``str()`` is one ``FILE:LINE: message`` per line."""

    def __init__(self, source: str, problems: Iterable[Problem]):
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line)  # stable: a line's problems in found order
        super().__init__("\n".join(f"{source}:{p.line}: {p.message}" for p in self.problems))


# --- YAML: a plain value tree plus the line of every key and value --------------------------------

Path = tuple[str | int, ...]


@dataclass
class _Doc:
    """The file as plain Python values, with 1-based lines by path (``("activity", 0, "filter")``)."""

    source: str
    root: Any = None
    value_lines: dict[Path, int] = field(default_factory=dict)
    key_lines: dict[Path, int] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)  # scalars as written, before YAML typed them
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def line(self, path: Path) -> int:
        """Where the value at ``path`` starts (its nearest located ancestor if it is absent)."""
        while path and path not in self.value_lines:
            path = path[:-1]
        return self.value_lines.get(path, 1)

    def key_line(self, path: Path) -> int:
        """Where ``path``'s key is written: the place to point at for "this entry is wrong"."""
        return self.key_lines.get(path) or self.line(path)

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Problem(line, message))


def _compose(text: str, source: str) -> _Doc:
    try:
        import yaml  # CLI-only dependency, see the module docstring
    except ImportError as exc:
        raise ImportError("reading a desired-state file needs PyYAML (pip install pyyaml)") from exc

    doc = _Doc(source)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise DesiredStateError(source, [_syntax_problem(exc, text)]) from None
        except yaml.YAMLError as exc:
            raise DesiredStateError(source, [Problem(1, f"invalid YAML: {exc}")]) from None
        if node is not None:
            doc.root = _build(loader, doc, node, (), set())
    finally:
        loader.dispose()
    return doc


def _syntax_problem(exc: Any, text: str) -> Problem:
    """PyYAML's error at the line it noticed it (an unclosed bracket: the end of the file, so the
    message names where the construct started)."""
    mark, context_mark = exc.problem_mark or exc.context_mark, exc.context_mark
    line = min(mark.line + 1, max(len(text.splitlines()), 1)) if mark else 1  # not past the last line
    context = exc.context or ""
    if context and context_mark and context_mark.line + 1 != line:
        context += f" (started at line {context_mark.line + 1})"
    what = "; ".join(part for part in (context, exc.problem) if part)
    return Problem(line, f"invalid YAML: {what}")


def _build(loader: Any, doc: _Doc, node: Any, path: Path, ancestors: set[int]) -> Any:
    """Plain value of ``node``, recording lines; scalars typed by PyYAML's safe constructors."""
    import yaml

    doc.value_lines[path] = node.start_mark.line + 1
    if id(node) in ancestors:  # an alias of its own ancestor: YAML allows it, a tree cannot hold it
        doc.error(node.start_mark.line + 1, "recursive YAML alias")
        return None
    inner = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        written = {id(key) for key, _ in node.value}  # keys of this mapping itself, not merged in
        try:
            loader.flatten_mapping(node)  # resolve ``<<: *anchor`` merge keys as SafeLoader would
        except yaml.YAMLError as exc:
            doc.error(node.start_mark.line + 1, f"invalid merge: {getattr(exc, 'problem', None) or exc}")
            return None
        mapping: dict[str, Any] = {}
        written_keys: set[str] = set()
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or not isinstance(key := _scalar(loader, doc, key_node), str):
                doc.error(key_line, "keys must be plain names")
                continue
            # A key written twice: PyYAML silently keeps the last one, so the first would be lost. A
            # written key overriding a merged one is what merge keys are for (merged ones come first).
            if key in written_keys and id(key_node) in written:
                doc.error(key_line, f"duplicate key {key!r} (first at line {doc.key_lines[(*path, key)]})")
                continue
            doc.key_lines[(*path, key)] = key_line
            if id(key_node) in written:
                written_keys.add(key)
            mapping[key] = _build(loader, doc, value_node, (*path, key), inner)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, doc, item, (*path, i), inner) for i, item in enumerate(node.value)]
    doc.raw[path] = node.value
    return _scalar(loader, doc, node)


def _scalar(loader: Any, doc: _Doc, node: Any) -> Any:
    import yaml

    try:
        return loader.construct_object(node)
    except yaml.YAMLError as exc:  # e.g. an unknown !tag
        doc.error(node.start_mark.line + 1, f"invalid value: {getattr(exc, 'problem', None) or exc}")
        return None


# --- Validation of the value tree ----------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}".lower()
    if isinstance(value, int | float):
        return f"the {'integer' if isinstance(value, int) else 'number'} {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


class _Validator:
    def __init__(self, doc: _Doc):
        self.doc = doc

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.doc.error(self.doc.key_line(path) if at_key else self.doc.line(path), message)

    def mapping(self, value: Any, path: Path, what: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """``value`` if it is a mapping, reporting keys outside ``allowed`` (with a suggestion)."""
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping with {', '.join(allowed)}; got {_kind(value)}", at_key=True)
            return None
        for key in value:
            if key not in allowed:
                hint = _suggest(key, allowed)
                self.error((*path, key), f"unknown key {key!r} in {what}{hint}; expected: {', '.join(allowed)}",
                           at_key=True)
        return value

    def misspelt(self, entry: dict[str, Any], allowed: tuple[str, ...], wanted: str) -> bool:
        """Whether an unknown key of ``entry`` looks like ``wanted``: that typo is reported already,
        so saying ``wanted`` is missing too would only repeat it."""
        return any(key not in allowed and wanted in _closest(key, allowed) for key in entry)

    def sequence(self, value: Any, path: Path, what: str) -> list[Any]:
        if value is None:  # ``activity:`` with every entry commented out means none
            return []
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list; got {_kind(value)}", at_key=True)
            return []
        return value

    def text(self, value: Any, path: Path, what: str) -> str | None:
        if isinstance(value, str):
            return value
        self.error(path, f"{what} must be a string; got {_kind(value)}")
        return None

    def user_id(self, value: Any, path: Path) -> str | None:
        """A user id as a string. An unquoted YAML integer is accepted with a warning when it reads
        back as exactly the digits written (not octal ``012``, hex, ``1_000`` or ``+5``): ids are
        strings to X, and ids beyond 2**53 break in JSON tools that read them as doubles."""
        if isinstance(value, int) and not isinstance(value, bool):
            written = self.doc.raw.get(path, "")
            if written != str(value):
                self.error(path, f"user_id {written} is read by YAML as the integer {value}; "
                                 f"write the id as a quoted string")
                return None
            self.doc.warn(self.doc.line(path), f'user_id {value} is unquoted; quote it ("{value}") so YAML '
                                               f"keeps it a string")
            value = str(value)
        elif not isinstance(value, str):
            self.error(path, f'user_id must be a quoted numeric string like "2244994945"; got {_kind(value)}')
            return None
        if problem := user_id_problem(value):
            self.error(path, problem)
            return None
        return value

    def top(self, root: Any) -> dict[str, Any]:
        if root is None:
            self.doc.error(1, f"the file is empty; expected a mapping with {', '.join(TOP_KEYS)}")
            return {}
        top = self.mapping(root, (), "the file", TOP_KEYS)
        if top is None:
            return {}
        out: dict[str, Any] = {}
        if "webhook" not in top:
            if not self.misspelt(top, TOP_KEYS, "webhook"):
                self.doc.error(self.doc.line(()), "missing 'webhook' (a mapping with the https url X delivers to)")
        else:
            out["webhook"] = self.webhook(top["webhook"], ("webhook",))
        out["account_activity"] = self.aaa_users(top.get("account_activity"), ("account_activity",))
        out["activity"] = self.subscriptions(top.get("activity"), ("activity",))
        if "prune" in top:
            if isinstance(top["prune"], bool):
                out["prune"] = top["prune"]
            else:
                self.error(("prune",), f"prune must be true or false; got {_kind(top['prune'])}")
        return out

    def webhook(self, value: Any, path: Path) -> dict[str, Any] | None:
        webhook = self.mapping(value, path, "webhook", WEBHOOK_KEYS)
        if webhook is None:
            return None
        if "url" not in webhook:
            if not self.misspelt(webhook, WEBHOOK_KEYS, "url"):
                self.error(path, "webhook is missing 'url'", at_key=True)
            return None
        url = self.text(webhook["url"], (*path, "url"), "webhook url")
        for problem in webhook_url_problems(url) if url is not None else []:
            self.error((*path, "url"), problem)
        return {"url": url}

    def aaa_users(self, value: Any, path: Path) -> list[dict[str, Any]]:
        users, first_line = [], {}
        for i, item in enumerate(self.sequence(value, path, "account_activity")):
            where = (*path, i)
            entry = self.mapping(item, where, "an account_activity entry", AAA_KEYS)
            if entry is None:
                continue
            if "user_id" not in entry:
                if not self.misspelt(entry, AAA_KEYS, "user_id"):
                    self.error(where, "account_activity entry is missing 'user_id'")
                continue
            user_id = self.user_id(entry["user_id"], (*where, "user_id"))
            if user_id is None:
                continue
            line = self.doc.line(where)
            if user_id in first_line:
                self.doc.error(line, f"duplicate account_activity user {user_id} (first at line {first_line[user_id]})")
                continue
            first_line[user_id] = line
            users.append({"user_id": user_id})
        return users

    def subscriptions(self, value: Any, path: Path) -> list[dict[str, Any]]:
        specs, first_line = [], {}
        for i, item in enumerate(self.sequence(value, path, "activity")):
            where = (*path, i)
            spec, key = self.subscription(item, where)
            if key is not None:  # duplicates count even when the entry has other problems (e.g. its tag)
                line = self.doc.line(where)
                if key in first_line:
                    event_type, filter_ = key
                    self.doc.error(line, f"duplicate subscription: {event_type} with filter "
                                         f"{_format_filter(dict(filter_))} is already declared at line "
                                         f"{first_line[key]}")
                    continue
                first_line[key] = line
            if spec is not None:
                specs.append(spec)
        return specs

    def subscription(self, item: Any, where: Path) -> tuple[dict[str, Any] | None, SubscriptionKey | None]:
        """One activity entry normalised (canonical type, string filter) and its identity; each is
        None when the entry is wrong (the identity needs only a valid type and filter)."""
        entry = self.mapping(item, where, "an activity entry", SPEC_KEYS)
        if entry is None:
            return None, None
        event_type = self.event_type(entry, where)

        filter_path = (*where, "filter")
        filter_ = self.filter(entry.get("filter", {}), filter_path)
        filter_keys_ok = True
        if event_type is not None and isinstance(entry.get("filter", {}), dict):  # keys depend on the type
            for key, message in filter_key_problems(event_type, entry.get("filter", {})):
                if key is None and "filter" in entry:
                    self.error(filter_path, message, at_key=True)
                elif key is None:
                    if not self.misspelt(entry, SPEC_KEYS, "filter"):
                        self.error(where, message)
                else:
                    self.error((*filter_path, key), message, at_key=True)
                filter_keys_ok = False

        tag_ok, tag = True, entry.get("tag")
        if tag is not None:
            tag = self.text(tag, (*where, "tag"), "tag")
            if tag is not None and (problem := tag_problem(tag)):
                self.error((*where, "tag"), problem)
                tag = None
            tag_ok = tag is not None

        if event_type is None or filter_ is None or not filter_keys_ok:
            return None, None
        identity = (event_type, frozenset(filter_.items()))
        return ({"event_type": event_type, "filter": filter_, "tag": tag} if tag_ok else None), identity

    def event_type(self, entry: dict[str, Any], where: Path) -> str | None:
        """The entry's canonical event type, or None (reported) if it is missing or not subscribable."""
        if "event_type" not in entry:
            if not self.misspelt(entry, SPEC_KEYS, "event_type"):
                self.error(where, "activity entry is missing 'event_type'")
            return None
        name = self.text(entry["event_type"], (*where, "event_type"), "event_type")
        if name is None:
            return None
        if problem := event_type_problem(name):
            self.error((*where, "event_type"), problem)
            return None
        canonical = event_types.canonical_xaa_type(name)
        if canonical != name:
            self.doc.warn(self.doc.line((*where, "event_type")),
                          f"event_type {name!r} is a deprecated alias; using {canonical!r}")
        return canonical

    def filter(self, value: Any, path: Path) -> dict[str, str] | None:
        """The filter with string values, checking each value by its key (keys vs type: elsewhere)."""
        if not isinstance(value, dict):
            self.error(path, f"filter must be a mapping like {{user_id: \"2244994945\"}}; got {_kind(value)}",
                       at_key=True)
            return None
        out: dict[str, str] = {}
        for key, raw in value.items():
            if (text := self.filter_value(key, raw, (*path, key))) is not None:
                out[key] = text
        return out if len(out) == len(value) else None

    def filter_value(self, key: str, value: Any, path: Path) -> str | None:
        if key == "user_id":
            return self.user_id(value, path)
        text = self.text(value, path, f"filter {key}")
        if text is not None and (problem := filter_value_problem(key, text)):
            self.error(path, problem)
            return None
        return text


def load_desired(text: str, source: str = "<file>") -> DesiredState:
    """Parse and validate a desired-state file; raises :class:`DesiredStateError` with every problem."""
    doc = _compose(text, source)
    data = _Validator(doc).top(doc.root)
    if doc.problems:
        raise DesiredStateError(source, doc.problems)
    data["warnings"] = [f"{source}:{line}: {message}" for line, message in sorted(doc.warnings, key=lambda w: w.line)]
    try:
        return DesiredState.model_validate(data)
    except ValidationError as exc:  # a rule the line-level checks above missed: still say where
        raise DesiredStateError(source, [
            Problem(doc.line(tuple(error["loc"])), error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]) from None
