"""Settings: one object read from the environment (and a `.env`), shared by the service and the CLI.

settings = Settings()                       # MODERATO_* variables, DATABASE_URL
settings.database_url                       # sqlite:///<data dir>/moderato.db unless overridden
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Request body limits (bytes) for the moderation endpoints; bigger bodies get 413.
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024
#: Longest comment text the API accepts (characters).
MAX_TEXT_CHARS = 20_000
MAX_BATCH_ITEMS = 100


class Settings(BaseSettings):
    """Everything configurable about one deployment; every field has a working default."""

    model_config = SettingsConfigDict(env_prefix="MODERATO_", env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("./data")
    database_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MODERATO_DATABASE_URL")
    )
    #: Operator token for /v1/admin/*; unset disables those endpoints.
    admin_token: SecretStr | None = None
    #: A bundle directory to serve instead of the promoted / packaged one (pins it: no hot reload).
    bundle: Path | None = None
    #: How often each worker checks the database for a newly promoted bundle (see api.reload).
    bundle_check_seconds: float = Field(default=5.0, gt=0)

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    #: How long an authenticated key is remembered in-process (0 disables; see api.site_cache).
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    #: How long a rotated-out site key keeps working.
    key_grace_hours: float = 24.0
    #: Webhook delivery: attempts are bounded; delay before attempt n+1 is base * 2**(n-1), capped.
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_poll_seconds: float = Field(default=2.0, gt=0)
    #: How often the service purges text past each site's retention period.
    retention_check_seconds: float = Field(default=3600.0, gt=0)
    #: Group commit: the most write jobs the single writer commits at once.
    writer_max_batch: int = Field(default=256, ge=1)
    #: sys.setswitchinterval for the service (seconds; 0 keeps Python's 5 ms). The event loop and the
    #: writer thread hand work to each other on every request; a shorter interval cuts tail latency.
    gil_switch_interval: float = Field(default=0.0005, ge=0)
    #: Run Alembic migrations when the service starts.
    auto_migrate: bool = True

    log_level: str = "INFO"
    log_json: bool = True
    #: Comment text is personal data: logs leave it out unless this is set.
    log_comment_text: bool = False

    @field_validator("database_url_override")
    @classmethod
    def _normalise_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("MODERATO_ADMIN_TOKEN must be at least 16 characters")
        return value

    @property
    def database_url(self) -> str:
        """`DATABASE_URL` if set, else SQLite in the data directory."""
        if self.database_url_override:
            return self.database_url_override
        return f"sqlite:///{(self.data_dir / 'moderato.db').resolve()}"

    @property
    def bundles_dir(self) -> Path:
        """Where retrained bundles live, one directory per version."""
        return self.data_dir / "bundles"

    @property
    def bundles_lock_file(self) -> Path:
        """Held while bundles are written, promoted or pruned (`classifier.bundle.bundles_lock`)."""
        return self.data_dir / "bundles.lock"
