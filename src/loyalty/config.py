"""Typed settings read from LOYALTY_* environment variables (and a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///loyalty.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://user@host/db",
    )
    business_timezone: str = "Asia/Ho_Chi_Minh"
    program_file: Path | None = None
    # Uncaptured holds lapse after this many seconds unless the request asks otherwise.
    hold_timeout_seconds: int = Field(default=900, ge=10, le=7 * 24 * 3600)
    idempotency_retention_hours: int = Field(default=48, ge=24)
    host: str = "127.0.0.1"
    port: int = 8000
    log_sql: bool = False
    # Database connections per server process, and as many request threads: a request never
    # waits for a connection while holding a thread, and no connection is opened per request.
    db_pool_size: int = Field(default=16, ge=1, le=200)
    # POS purchases one server process runs at once; later ones wait their turn in arrival order.
    # More at once only adds runnable threads and database backends to the CPUs: under saturation
    # the operating system serves them unfairly and the p99 grows (docs/benchmarks.md: 16 at once,
    # 63 - 68 ms at saturation; 4, 44 - 51 ms in most runs; same throughput).
    purchase_concurrency: int = Field(default=4, ge=1, le=200)
    # Signs survey links. Unset: a random secret generated once and kept in the database, so
    # every worker and machine sharing the database agrees and links survive restarts.
    secret_key: SecretStr | None = None
    # The web screens' session cookie is Secure (browsers keep it on http://127.0.0.1 and localhost);
    # false only to try the screens over plain http from another machine.
    web_secure_cookies: bool = True
    # Where customers open survey links (the /s/{token} page), e.g. https://loyalty.example.vn
    public_url: str = "http://127.0.0.1:8000"
    # E-mail delivery of survey invitations by `loyalty jobs run`. Unset host: nothing is sent and
    # invitations are only listed for an integration (GET /v1/surveys/{id}/invitations).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: int = Field(default=20, ge=1, le=300)
    # The From: address, e.g. "Cửa hàng ABC <khaosat@abc.vn>"; required once smtp_host is set.
    mail_from: str | None = None
    # At most this many invitations are e-mailed per job run; the rest go out on the next runs.
    mail_invitations_per_run: int = Field(default=200, ge=1, le=10_000)
    # The largest CSV the staff Imports page accepts (bytes); a bigger upload is refused (413) before
    # any of it is imported. The CLI has no limit.
    import_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        backend = url.get_backend_name()
        if backend not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")
        if backend == "postgresql" and url.drivername == "postgresql":
            # psycopg 3 is the driver we ship; plain postgresql:// would look for psycopg2.
            value = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return value

    @field_validator("business_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _mail_needs_sender(self) -> Settings:
        if self.smtp_host and not (self.mail_from and "@" in self.mail_from):
            raise ValueError("LOYALTY_MAIL_FROM (an e-mail address) is required when LOYALTY_SMTP_HOST is set")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
