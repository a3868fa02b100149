"""The portal's own settings (LOYALTY_PORTAL_*), kept beside the feature so config.py stays small."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_PORTAL_", env_file=".env", extra="ignore")

    # Demo mode: every login code is written to the server log (WARNING, logger loyalty.portal.login),
    # so a demo works without an SMTP server or an SMS gateway. Never on in production.
    log_codes: bool = False
    code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    # Wrong guesses on one code before it is locked; a new code must be asked for.
    max_attempts: int = Field(default=5, ge=1, le=20)
    # Codes one identity may ask for within `rate_window_seconds` (and the least time between two).
    codes_per_window: int = Field(default=5, ge=1, le=100)
    rate_window_seconds: int = Field(default=3600, ge=60, le=86_400)
    min_interval_seconds: int = Field(default=30, ge=0, le=3600)
    default_locale: str = Field(default="vi", pattern="^(vi|en)$")


@lru_cache
def get_portal_settings() -> PortalSettings:
    return PortalSettings()
