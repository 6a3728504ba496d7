"""Runtime configuration of the functions, read once from the environment the template sets.

A frozen dataclass rather than a pydantic model: the CRC function imports this and must stay
light. Every variable is set by ``template.yaml`` (and by ``xrelay local`` from the same
template), so the names below are the contract between the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# The replay API reaches 24 hours back; keeping events 2 days is the floor that lets a replay
# of the oldest recoverable minute still find (and skip) what was already stored.
MIN_RETENTION_DAYS = 2
# Kept equal to xapi.DEFAULT_BASE_URL without importing it: xapi imports httpx, the CRC must not.
DEFAULT_X_API_BASE_URL = "https://api.x.com"
DEFAULT_STACK_NAME = "xrelay"
# The CrcSigningSecret Parameter's values (credentials.CRC_SECRET_CHOICES; kept here too so that
# a wrong value fails at import, when the function starts, not at X's first CRC).
CRC_SIGNING_SECRETS = ("auto", "client_secret", "consumer_secret")


@dataclass(frozen=True)
class Settings:
    stage: str
    events_table: str
    state_table: str
    events_queue_url: str
    app_secret_arn: str
    retention_days: int
    secret_cache_seconds: int
    x_api_base_url: str = DEFAULT_X_API_BASE_URL
    stack_name: str = DEFAULT_STACK_NAME
    webhook_id: str = ""  # the WebhookId Parameter: empty means "the one X has for the declared URL"
    crc_signing_secret: str = "auto"  # the CrcSigningSecret Parameter: which secret answers X's CRC
    index_users: bool = True  # the UserIndex Parameter (or PurgeOnRevoke): events get a ByUser entry

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        retention = int(env.get("RETENTION_DAYS", "30"))
        if retention < MIN_RETENTION_DAYS:
            raise ValueError(f"RETENTION_DAYS={retention} is below the replay horizon ({MIN_RETENTION_DAYS} days)")
        crc_signing_secret = env.get("CRC_SIGNING_SECRET") or "auto"
        if crc_signing_secret not in CRC_SIGNING_SECRETS:
            raise ValueError(f"CRC_SIGNING_SECRET={crc_signing_secret!r} is not one of "
                             + ", ".join(CRC_SIGNING_SECRETS))
        return cls(
            stage=env.get("STAGE", "dev"),
            events_table=env.get("EVENTS_TABLE", ""),
            state_table=env.get("STATE_TABLE", ""),
            events_queue_url=env.get("EVENTS_QUEUE_URL", ""),
            app_secret_arn=env.get("X_APP_SECRET_ARN", ""),
            retention_days=retention,
            secret_cache_seconds=int(env.get("SECRET_CACHE_SECONDS", "300")),
            x_api_base_url=env.get("X_API_BASE_URL") or DEFAULT_X_API_BASE_URL,
            stack_name=env.get("STACK_NAME") or DEFAULT_STACK_NAME,
            webhook_id=env.get("WEBHOOK_ID", ""),
            crc_signing_secret=crc_signing_secret,
            index_users=env.get("INDEX_USERS", "true").lower() != "false",
        )
