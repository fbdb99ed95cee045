"""The settings of app_data: read from the environment (``APP_DATA_*``), typed and frozen."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from app_data.errors import ConfigurationError
from app_data.url import ConnectionTarget, mask_url, parse_database_url
from checkpoint_pg._runtime.retry import DEFAULT_POLICY, RetryPolicy
from checkpoint_pg._runtime.shell import IDLE_CHECK_AFTER

__all__ = ["AppDataSettings", "get_settings", "load_settings"]


class AppDataSettings(BaseSettings):
    """Everything app_data reads from the environment (``APP_DATA_*``), typed and frozen.

    The URL comes from ``$APP_DATA_DATABASE_URL``, else ``$CHECKPOINT_PG_DSN`` (the DSN the
    savers and the CLI use, so one variable configures the whole product).
    """

    model_config = SettingsConfigDict(
        env_prefix="APP_DATA_",
        frozen=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    database_url: SecretStr = Field(
        validation_alias=AliasChoices("APP_DATA_DATABASE_URL", "CHECKPOINT_PG_DSN")
    )
    pooler: bool | None = Field(
        default=None, description="None: detect from the URL (pgbouncer=true or pooler port)"
    )
    pool_size: int = Field(default=5, ge=1, le=1000)
    max_overflow: int = Field(default=10, ge=0, le=1000)
    pool_timeout: float = Field(default=30.0, gt=0)
    pool_recycle: int = Field(default=1800, ge=-1, description="seconds; -1 = never")
    pool_pre_ping: bool = Field(
        default=True, description="ping a pooled connection idle for over pool_ping_after"
    )
    pool_ping_after: float = Field(
        default=IDLE_CHECK_AFTER,
        ge=0,
        description="seconds a pooled connection may sit idle before checkout pings it; 0: always",
    )
    echo: bool = False

    # Start-up retries with the product-wide `RetryPolicy` (`connect_policy`): by default its
    # backoff and jitter, within `connect_deadline` instead of its budget, and as many attempts
    # as that deadline holds (None).
    connect_attempts: int | None = Field(default=None, ge=1, le=1000)
    connect_backoff_initial: float = Field(default=DEFAULT_POLICY.base_delay, gt=0)
    connect_backoff_max: float = Field(default=DEFAULT_POLICY.max_delay, gt=0)
    # A server that is starting refuses connections for a moment, so a refusal is retried; but
    # a wrong address must not look like a hang: raise this for orchestrated start-ups.
    connect_deadline: float = Field(default=5.0, gt=0, description="seconds for all attempts")

    health_check_timeout: float = Field(default=5.0, gt=0)
    shutdown_timeout: float = Field(default=10.0, ge=0)

    max_file_bytes: int = Field(default=1024 * 1024, ge=1)
    max_files_per_batch: int = Field(default=10_000, ge=1)
    max_thought_bytes: int = Field(default=64 * 1024, ge=1)
    # The text-search configuration of thought search; migration 0002 indexes 'english'
    # (another one is still correct, only unindexed: docs/deep-agents.md).
    thoughts_language: str = Field(default="english", pattern=r"^[a-z][a-z_]{0,62}$")

    def target(self) -> ConnectionTarget:
        """Return the validated connection target (computed from the URL on every call)."""
        return parse_database_url(self.database_url.get_secret_value(), pooler=self.pooler)

    def connect_policy(self) -> RetryPolicy:
        """The `RetryPolicy` of start-up: the ``connect_*`` settings, the shared jitter."""
        return RetryPolicy(
            max_attempts=self.connect_attempts,
            base_delay=self.connect_backoff_initial,
            max_delay=self.connect_backoff_max,
            jitter=DEFAULT_POLICY.jitter,
            total_budget=self.connect_deadline,
        )

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "database_url":
                yield name, mask_url(self.database_url.get_secret_value())
            else:
                yield name, value


def load_settings(**overrides: Any) -> AppDataSettings:
    """Read the settings from the environment (keyword arguments win) and validate the URL.

    Raises:
        ConfigurationError: a setting is missing or malformed (the message never echoes the URL).
        InvalidDatabaseURLError: the URL cannot be used.
    """
    try:
        settings = AppDataSettings(**overrides)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid app_data settings: {problems}") from None
    settings.target()
    return settings


@functools.cache
def get_settings() -> AppDataSettings:
    """The process's settings, read from the environment once (``get_settings.cache_clear()``)."""
    return load_settings()
