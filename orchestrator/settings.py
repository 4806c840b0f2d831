"""All settings in one frozen object, read once from `ORCH_*` environment variables (or flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ORCH_"
DEV_COUPON_SECRET = "orchestrator-dev-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    journeys_dir: Path = Path("journeys")
    # Keys coupon codes so they cannot be guessed from action ids; set your own in production.
    coupon_secret: SecretStr = SecretStr(DEV_COUPON_SECRET)
