"""The one settings object, read from PREFHUB_* environment variables and an optional .env file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
INSECURE_SECRETS = {"", "change-me", "changeme", "secret", "dev"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREFHUB_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    secret_key: str = ""
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    session_max_age_s: int = 14 * 24 * 3600
    # Secure cookies are forced on in production; elsewhere they follow the request scheme.
    cookie_secure: bool | None = None
    login_attempts_per_account: int = 5
    login_attempts_per_address: int = 30
    login_window_s: int = 300
    max_body_bytes: int = 50 * 1024 * 1024
    max_json_body_bytes: int = 2 * 1024 * 1024
    log_json: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _fill_local_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'prefhub.db'}"
        if self.env == "production":
            if self.secret_key.strip().lower() in INSECURE_SECRETS or len(self.secret_key) < 32:
                raise ValueError(
                    "PREFHUB_SECRET_KEY must be set to a random value of at least 32 characters in production"
                )
        elif not self.secret_key:
            self.secret_key = _local_secret(self.data_dir)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _local_secret(data_dir: Path) -> str:
    """Generate a secret once and keep it beside the local database, so logins survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
