"""An operator's first-day commands: ``users authorize``/``users login``, ``outputs``, ``doctor``.

Registered by ``cli.main`` (one call); the checks and the OAuth flows live in ``doctor`` and
``oauth_login``. Users' tokens never travel on the command line (shell history, ``ps``): they come
from a prompt, standard input or a file, or straight from X through ``users login``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

# Token flags of earlier versions: still recognised, so that using one is refused with the reason
# instead of argparse's "unrecognized arguments", which would echo the token.
_ARGV_TOKEN_FLAGS = ("--access-token", "--access-token-secret", "--oauth2-token", "--refresh-token")


class _RefusedArgvToken(argparse.Action):
    """Records which token flag was used, and drops its value (never stored, never echoed)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        namespace.argv_token = [*(getattr(namespace, "argv_token", None) or []), option_string]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("users", help="users' authorisations of the app (kept in Secrets Manager)")
    usub = p.add_subparsers(dest="users_command", required=True)
    u = usub.add_parser(
        "authorize", help="store a user's tokens, read from a prompt, standard input or a file (never argv)",
        description="Tokens are read from a hidden prompt (a terminal), from standard input (piped, or "
                    "--stdin) or from --from-file: JSON such as X's token answers ({\"access_token\", "
                    "\"access_token_secret\"} for OAuth 1.0a; {\"access_token\", \"refresh_token\", "
                    "\"expires_in\"} for OAuth 2.0) or X's form-encoded OAuth 1.0a answer "
                    "(oauth_token=...&oauth_token_secret=...).")
    u.add_argument("user_id", help="the user's numeric X id (1-19 digits)")
    source = u.add_mutually_exclusive_group()
    source.add_argument("--from-file", type=Path, metavar="PATH", help="read the tokens from this file")
    source.add_argument("--stdin", action="store_true", help="read the tokens from standard input")
    u.add_argument("--oauth2", action="store_true", help="prompt for OAuth 2.0 tokens (default: OAuth 1.0a)")
    u.add_argument("--expires-in", type=int, default=7200,
                   help="seconds the OAuth 2.0 token is valid, when the input does not say (X: 7200)")
    for flag in _ARGV_TOKEN_FLAGS:
        u.add_argument(flag, dest="argv_token", action=_RefusedArgvToken, nargs="?", help=argparse.SUPPRESS)
    u.set_defaults(func=cmd_users_authorize)

    from xrelay.tools.cli.oauth_login import add_login_parser
    add_login_parser(usub)

    p = sub.add_parser("outputs", help="the deployed stack's Outputs (WebhookUrl: the URL to give X)")
    p.add_argument("--stack-name", default=argparse.SUPPRESS, help="CloudFormation stack (default: samconfig.toml's)")
    p.add_argument("key", nargs="?", help="print this output's value alone, e.g. WebhookUrl")
    p.add_argument("--json", action="store_true", help="one JSON object, output name -> value")
    p.set_defaults(func=cmd_outputs)

    from xrelay.tools.operate.doctor import add_doctor_parser
    add_doctor_parser(sub)


# ---------------------------------------------------------------------------- users authorize


class TokenInputError(ValueError):
    """The tokens given are incomplete or unreadable. The message names fields, never values."""


def parse_tokens(text: str, default_expires_in: int = 7200) -> dict[str, Any]:
    """``{"kind": "oauth1", "access_token", "access_token_secret"}`` or
    ``{"kind": "oauth2", "access_token", "refresh_token", "expires_in"}`` from JSON or form-encoded text."""
    text = text.strip()
    if not text:
        raise TokenInputError("no tokens given")
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise TokenInputError("the tokens look like JSON but do not parse") from None
        if not isinstance(doc, dict):
            raise TokenInputError("the tokens must be a JSON object")
    else:
        doc = dict(parse_qsl(text, keep_blank_values=True))
        if not doc:
            raise TokenInputError("the tokens must be JSON or form-encoded (oauth_token=...&oauth_token_secret=...)")
    access = doc.get("access_token") or doc.get("oauth_token")
    secret = doc.get("access_token_secret") or doc.get("oauth_token_secret")
    if secret:
        if not access:
            raise TokenInputError("OAuth 1.0a needs access_token (oauth_token) with access_token_secret")
        return {"kind": "oauth1", "access_token": str(access), "access_token_secret": str(secret)}
    if not access:
        raise TokenInputError("no access_token (or oauth_token) in the input")
    if doc.get("token_type", "bearer").lower() != "bearer":
        raise TokenInputError("an OAuth 2.0 token must be of token_type bearer")
    try:
        expires_in = int(doc.get("expires_in", default_expires_in))
    except (TypeError, ValueError):
        raise TokenInputError("expires_in must be a number of seconds") from None
    return {"kind": "oauth2", "access_token": str(access), "refresh_token": doc.get("refresh_token") or None,
            "expires_in": expires_in}


def _read_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise TokenInputError(f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"xrelay: warning: {path} is readable by other users (chmod 600 it, or delete it now)",
              file=sys.stderr)
    return text


def _prompt(oauth2: bool, expires_in: int) -> dict[str, Any]:
    if oauth2:
        access = getpass.getpass("OAuth 2.0 access token: ")
        refresh = getpass.getpass("refresh token (Enter for none): ")
        return parse_tokens(json.dumps({"access_token": access, "refresh_token": refresh,
                                        "expires_in": expires_in}), expires_in)
    access = getpass.getpass("OAuth 1.0a access token: ")
    secret = getpass.getpass("access token secret: ")
    if not secret:
        raise TokenInputError("OAuth 1.0a needs the access token secret too")
    return parse_tokens(json.dumps({"access_token": access, "access_token_secret": secret}))


def read_tokens(args: argparse.Namespace, stdin: Any = None) -> dict[str, Any]:
    stdin = stdin or sys.stdin
    if args.from_file:
        return parse_tokens(_read_file(args.from_file), args.expires_in)
    if args.stdin or not stdin.isatty():
        return parse_tokens(stdin.read(), args.expires_in)
    return _prompt(args.oauth2, args.expires_in)


def store_tokens(stack_name: str, user_id: str, tokens: dict[str, Any]) -> str:
    """Store the tokens as the reconcile reads them and mark the user authorised; the secret's name."""
    from datetime import UTC, datetime, timedelta

    from xrelay.subscriptions.users import StoredUser, UserCredentialStore, secret_prefix
    from xrelay.subscriptions.xapi import UserCredentials
    from xrelay.tools.cli.cli import _stores

    now = datetime.now(UTC)
    if tokens["kind"] == "oauth1":
        user = StoredUser(user_id, UserCredentials.oauth1(tokens["access_token"], tokens["access_token_secret"]))
    else:
        user = StoredUser(user_id, UserCredentials.oauth2(tokens["access_token"]), tokens["refresh_token"],
                          now + timedelta(seconds=tokens["expires_in"]))
    _, state = _stores(stack_name)
    UserCredentialStore(stack_name).put(user)
    state.mark_authorized(user_id, now)
    return secret_prefix(stack_name) + user_id


def cmd_users_authorize(args: argparse.Namespace) -> int:
    from xrelay.tools.cli.cli_errors import CliError

    if args.argv_token:
        raise CliError(f"{args.argv_token[0]} is no longer accepted: tokens on the command line end up in shell "
                       "history and `ps`. Nothing was stored. Run `xrelay users authorize USER_ID` to be prompted, "
                       "pipe the tokens in (--stdin), use --from-file PATH, or `xrelay users login` to authorise in "
                       "a browser.")
    check_user_id(args.user_id)
    try:
        tokens = read_tokens(args)
    except TokenInputError as exc:  # never echoes a token: messages name fields, not values
        raise CliError(str(exc)) from None
    name = store_tokens(args.stack_name, args.user_id, tokens)
    print(f"user {args.user_id} authorised ({tokens['kind']}); stored in Secrets Manager as {name}")
    return 0


def check_user_id(user_id: str | None) -> None:
    """A user id as X writes them, else the CLI's one-line usage error (exit 2)."""
    from xrelay.events.event_types import is_x_id
    from xrelay.tools.cli.cli_errors import CliError

    if user_id is not None and not is_x_id(user_id):
        raise CliError(f"user id must be 1-19 digits, got {user_id!r}")


# ---------------------------------------------------------------------------- outputs


def stack_outputs(stack_name: str) -> list[dict[str, str]]:
    from xrelay.aws import client

    stacks = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    return [{"key": o["OutputKey"], "value": o["OutputValue"], "description": o.get("Description", "")}
            for o in stacks[0].get("Outputs", [])]


def cmd_outputs(args: argparse.Namespace) -> int:
    from xrelay.tools.cli.cli import _aws_env
    from xrelay.tools.cli.cli_errors import CliError

    _aws_env()
    outputs = stack_outputs(args.stack_name)  # an unknown stack: the CLI's one error mapping (exit 2)
    if args.key:
        value = next((o["value"] for o in outputs if o["key"] == args.key), None)
        if value is None:
            raise CliError(f"stack {args.stack_name!r} has no output {args.key!r} "
                           f"(it has: {', '.join(o['key'] for o in outputs) or 'none'})")
        print(value)
        return 0
    if args.json:
        print(json.dumps({o["key"]: o["value"] for o in outputs}, indent=2))
        return 0
    if not outputs:
        print(f"stack {args.stack_name!r} has no outputs (is it fully deployed?)")
        return 0
    width = max(len(o["key"]) for o in outputs)
    for o in outputs:
        print(f"{o['key'].ljust(width)}  {o['value']}")
    return 0
