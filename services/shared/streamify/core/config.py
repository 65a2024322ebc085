"""Settings for every Streamify process, read from STREAMIFY_* environment variables.

One class for all services so that the table in docs/operations.md is the single reference;
each process reads only the fields it needs. Defaults are the embedded single-machine mode.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMIFY_", extra="ignore")

    # --- where state lives -------------------------------------------------------------
    data_dir: Path = Field(Path(".streamify"), description="Embedded-mode state: SQLite file, dev signing key, storage data.")
    database_url: str | None = Field(None, description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite file in data_dir.")
    redis_url: str | None = Field(None, description="Redis for the metadata cache, e.g. redis://127.0.0.1:6379/0. Default: in-process cache.")

    # --- metadata cache ----------------------------------------------------------------
    cache_ttl_seconds: float = Field(60.0, gt=0, description="How long a cached video stays fresh.")
    cache_negative_ttl_seconds: float = Field(2.0, ge=0, description="How long a NOT_FOUND is remembered.")
    cache_socket_timeout_seconds: float = Field(0.05, gt=0, description="Redis connect/read timeout; a slow cache is skipped, not waited for.")
    cache_breaker_cooldown_seconds: float = Field(2.0, gt=0, description="After a Redis failure, skip Redis this long before trying again.")

    # --- auth ----------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(None, description="HS256 signing key for bearer tokens. Required unless embedded.")
    jwt_issuer: str = Field("streamify", description="`iss` claim minted and required on tokens.")
    embedded: bool = Field(False, description="Single-machine mode: allows an ephemeral dev signing key kept in data_dir.")

    # --- this process's endpoints ----------------------------------------------------------
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port of this process (0 = pick a free one).")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port of this process (0 = off).")
    shutdown_grace_seconds: float = Field(5.0, ge=0, description="On SIGTERM: health goes NOT_SERVING, in-flight calls get this long.")
    log_level: str = Field("INFO", description="Python log level.")
    log_format: str = Field("json", pattern="^(json|text)$", description="`json` (one object per line) or `text`.")

    # --- how services reach each other and the outside --------------------------------------
    metadata_target: str = Field("127.0.0.1:50051", description="gRPC address of the Metadata service (for Upload/Transcode).")
    cdn_base_url: str = Field("http://127.0.0.1:8080/media", description="Base URL of the media CDN; playback and poster URLs start with it.")
    page_token_secret: SecretStr | None = Field(None, description="Key that signs page tokens. Default: derived from jwt_secret.")

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'streamify.db').resolve()}"


def settings_table() -> str:
    """The Markdown table of every setting, as docs/operations.md shows it (a test keeps them equal)."""
    lines = ["| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = str(field.annotation).replace("<class '", "").replace("'>", "")
        kind = kind.replace("pydantic.types.", "").replace("pathlib.", "").replace(" | None", "")
        default = "(unset)" if field.default is None else f"`{field.default}`"
        lines.append(f"| `STREAMIFY_{name.upper()}` | {kind} | {default} | {field.description} |")
    return "\n".join(lines)
