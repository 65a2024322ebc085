"""Settings for every Streamify process, read from STREAMIFY_* environment variables.

Each concern has one typed class (`CacheSettings`, `UploadSettings`, `TranscodeSettings`, …)
that defines its fields, bounds and defaults once. `Settings` holds every concern's fields flat
under the concern's prefix, so the environment, the command-line flags and the table in
docs/operations.md all say `STREAMIFY_UPLOAD_MAX_BYTES`; code reads the typed concern
(`settings.upload.max_bytes`), which is the only way the type checker lets it. Defaults are the
embedded single-machine mode.
"""

from __future__ import annotations

import copy
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseModel):
    """One concern's settings, held by Settings as `{PREFIX}{field}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    PREFIX: ClassVar[str]


class CacheSettings(Section):
    """The Metadata service's cache of videos (Redis, or in-process)."""

    PREFIX = "cache_"

    ttl_seconds: float = Field(60.0, gt=0, description="How long a cached video stays fresh.")
    negative_ttl_seconds: float = Field(
        2.0, ge=0, description="How long a NOT_FOUND is remembered."
    )
    socket_timeout_seconds: float = Field(
        0.05,
        gt=0,
        description="Redis connect/read timeout; a slow cache is skipped, not waited for.",
    )
    breaker_cooldown_seconds: float = Field(
        2.0, gt=0, description="After a Redis failure, skip Redis this long before trying again."
    )


class MediaGrantSettings(Section):
    """The signed /media grants in private videos' URLs (streamify.core.media_grants)."""

    PREFIX = "media_grant_"

    secret: SecretStr | None = Field(
        None,
        description="HMAC key of the /media grants in private videos' URLs (a path segment: videos/{id}/grant.{expires}.{signature}/), shared by Metadata and the gateway; at least 32 bytes. Required unless embedded.",
    )
    all_videos: bool = Field(
        False,
        description="Sign a grant into every video's media URLs, public ones too: for a CDN that checks grants but cannot ask who may watch (the CloudFront Function on EKS).",
    )
    ttl_seconds: int = Field(
        6 * 3600,
        gt=0,
        description="Lifetime of the /media grant signed into a private video's playback and poster URLs.",
    )


class S3Settings(Section):
    """Object storage (S3 API: SeaweedFS embedded, AWS S3 at scale)."""

    PREFIX = "s3_"

    endpoint_url: str | None = Field(
        None,
        description="S3 API endpoint the services use, e.g. http://127.0.0.1:8333. Default: AWS S3 of s3_region; embedded: the embedded SeaweedFS.",
    )
    public_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint browsers and CLIs reach; pre-signed URLs are signed for this host. Default: s3_endpoint_url.",
    )
    region: str = Field(
        "us-east-1",
        description="AWS region of the buckets (and of the SQS queue); SigV4 signs it into every request.",
    )
    access_key_id: SecretStr | None = Field(
        None,
        description="S3 access key. Default: boto3's credential chain (env, IRSA on EKS); embedded mode: a dev key pair kept in data_dir.",
    )
    secret_access_key: SecretStr | None = Field(
        None, description="S3 secret key, paired with s3_access_key_id."
    )
    addressing_style: str = Field(
        "path",
        pattern="^(path|virtual|auto)$",
        description="`path` (http://host/bucket/key; SeaweedFS, MinIO) or `virtual` (http://bucket.host/key).",
    )


class UploadSettings(Section):
    """What the Upload service accepts, and how long it waits."""

    PREFIX = "upload_"

    max_bytes: int = Field(
        20 * 1024**3, gt=0, description="Largest file CreateUpload accepts (bytes)."
    )
    single_put_max_bytes: int = Field(
        64 * 1024**2,
        gt=0,
        description="Files up to this size get one pre-signed PUT; larger ones a multipart upload.",
    )
    part_size_bytes: int = Field(
        16 * 1024**2,
        ge=5 * 1024**2,
        description="Preferred multipart part size; grows when a file would need more than 10,000 parts.",
    )
    url_ttl_seconds: int = Field(
        900, ge=1, le=7 * 24 * 3600, description="Lifetime of every pre-signed upload URL."
    )
    expiry_seconds: float = Field(
        24 * 3600,
        gt=0,
        description="An upload not completed within this time is aborted and its video FAILED.",
    )
    max_pending_per_user: int = Field(
        20,
        ge=1,
        description="Unfinished uploads one user may have at once (RESOURCE_EXHAUSTED beyond).",
    )
    sweep_interval_seconds: float = Field(
        60.0, gt=0, description="How often the Upload service looks for expired uploads."
    )


class TranscodeSettings(Section):
    """The transcode orchestrator: leases, retries, deadlines and the shape of the plan."""

    PREFIX = "transcode_"

    orchestrator_id: str = Field(
        "", description="Id of this orchestrator replica (default: host-pid-random)."
    )
    lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A task's lease; heartbeats and progress extend it, expiry re-queues the task.",
    )
    heartbeat_interval_seconds: float = Field(
        10.0, gt=0, description="How often workers must send a heartbeat."
    )
    sweep_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often expired leases, job deadlines and missed status reports are handled.",
    )
    dispatch_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="How often a replica looks for tasks made runnable by other replicas.",
    )
    max_attempts: int = Field(3, ge=1, description="Attempts of one task before its job fails.")
    job_deadline_seconds: float = Field(
        6 * 3600.0, gt=0, description="A job still running after this ends FAILED."
    )
    segment_seconds: float = Field(
        4.0,
        gt=0,
        description="HLS segment length; every segment of every rendition starts with an IDR frame.",
    )
    segments_per_chunk: int = Field(
        4, ge=1, description="Segments per chunk task (the unit of parallelism and retry)."
    )
    first_chunk_segments: int = Field(
        1,
        ge=1,
        description="Segments in the first chunk; short, so a rung is playable early (progressive playback).",
    )
    audio_bitrate: int = Field(128_000, gt=0, description="AAC-LC bitrate of the audio rendition.")
    poster_max_width: int = Field(1280, gt=0, description="Widest poster image.")
    max_width: int = Field(
        7680,
        gt=0,
        description="Sources larger than transcode_max_width x transcode_max_height (either orientation) are refused: FAILED with a reason naming both sizes. Smaller ones are downscaled into the ladder.",
    )
    max_height: int = Field(
        4320, gt=0, description="See transcode_max_width (default 7680x4320: 8K UHD)."
    )
    task_url_ttl_seconds: int = Field(
        6 * 3600,
        gt=0,
        le=7 * 24 * 3600,
        description="Lifetime of the storage access an assignment carries (its source's GET URL and its outputs' POST policy).",
    )
    deleted_media_purge_again_seconds: float = Field(
        300.0,
        ge=0,
        description="A deleted video's media is deleted at once and again this much later (outputs a worker was still uploading).",
    )
    task_output_max_bytes: int = Field(
        4 * 1024**3,
        gt=0,
        description="Largest object a task's POST policy lets a worker write.",
    )
    progress_interval_seconds: float = Field(
        1.0,
        ge=0,
        description="At most one progress report per job to the Metadata service this often.",
    )
    queue_name: str = Field(
        "jobs", description="Queue the Upload service publishes VideoUploadedEvent on."
    )
    # A file's header can claim anything: these bound the work one upload can ask for.
    max_duration_seconds: float = Field(
        12 * 3600.0,
        gt=0,
        description="Longest video transcoded (seconds); a longer one ends FAILED with a reason.",
    )
    max_frames: int = Field(
        12 * 3600 * 60,
        ge=1,
        description="Most output frames one video may have (its duration x the output frame rate).",
    )
    max_chunks: int = Field(10_000, ge=1, description="Most chunk tasks one video is planned into.")
    min_source_bytes_per_second: float = Field(
        1.0,
        ge=0,
        description="A source smaller than this many bytes per second of its claimed duration is refused as a lying or truncated header (0 = no check).",
    )


class WorkerSettings(Section):
    """A transcode worker."""

    PREFIX = "worker_"

    slots: int = Field(1, ge=1, description="Tasks one worker runs at once.")
    work_dir: str | None = Field(
        None,
        description="Scratch space of a worker's task processes (default: the system temp dir).",
    )
    task_stall_seconds: float = Field(
        900.0, gt=0, description="A task process silent this long is killed and retried."
    )
    task_max_memory_bytes: int = Field(
        6 * 1024**3,
        ge=0,
        description="Address space of one task process (RLIMIT_AS; 0: unlimited). A 1080p chunk peaks near 1.3 GB.",
    )
    task_max_cpu_seconds: int = Field(
        3 * 3600,
        ge=0,
        description="CPU time of one task process (RLIMIT_CPU; 0: unlimited); past it the task fails for good.",
    )
    task_max_file_bytes: int = Field(
        4 * 1024**3,
        ge=0,
        description="Largest file a task process may write (RLIMIT_FSIZE; 0: unlimited).",
    )
    task_max_open_files: int = Field(
        1024, ge=0, description="Open files of one task process (RLIMIT_NOFILE; 0: unlimited)."
    )


class QueueSettings(Section):
    """The durable job queue (Upload -> Transcode)."""

    PREFIX = "queue_"

    backend: str = Field(
        "database",
        pattern="^(database|redis|sqs)$",
        description="`database` (a table in database_url), `redis` (Redis Streams) or `sqs`.",
    )
    url: str | None = Field(
        None,
        description="Redis URL (redis backend) or SQS queue URL (sqs backend); the database backend uses database_url.",
    )
    visibility_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A received job is hidden from other consumers this long unless acked or extended.",
    )
    max_deliveries: int = Field(
        5, ge=1, description="Deliveries of one job before it is dead-lettered instead of retried."
    )


class SeaweedFSSettings(Section):
    """The embedded SeaweedFS of `streamify run`."""

    PREFIX = "seaweedfs_"

    port: int = Field(
        8333,
        ge=1,
        le=55535,
        description="S3 port of the embedded SeaweedFS (its gRPC port is this + 10000).",
    )
    master_port: int = Field(
        9333, ge=1, le=55535, description="Master port of the embedded SeaweedFS (gRPC: + 10000)."
    )
    volume_port: int = Field(
        18080,
        ge=1,
        le=55535,
        description="Volume server port of the embedded SeaweedFS (gRPC: + 10000).",
    )
    filer_port: int = Field(
        8888, ge=1, le=55535, description="Filer port of the embedded SeaweedFS (gRPC: + 10000)."
    )


SECTIONS: tuple[type[Section], ...] = (
    CacheSettings,
    MediaGrantSettings,
    S3Settings,
    UploadSettings,
    TranscodeSettings,
    WorkerSettings,
    QueueSettings,
    SeaweedFSSettings,
)
S = TypeVar("S", bound=Section)


class SectionView(Generic[S]):
    """`settings.upload`: the UploadSettings of these settings (a read-only attribute)."""

    def __init__(self, kind: type[S]) -> None:
        self.kind = kind

    def __get__(self, settings: Settings, owner: type[Settings] | None = None) -> S:
        return settings.section(self.kind)


class _CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STREAMIFY_", extra="ignore", ignored_types=(SectionView,)
    )

    # --- where state lives -------------------------------------------------------------
    data_dir: Path = Field(
        Path(".streamify"),
        description="Embedded-mode state: SQLite file, development keys, storage data.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite file in data_dir.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for the metadata cache, e.g. redis://127.0.0.1:6379/0. Default: in-process cache.",
    )

    idempotency_key_ttl_seconds: float = Field(
        24 * 3600,
        gt=0,
        description="A request_id is remembered this long (AIP-155): a retry within it gets the first answer; older keys are swept.",
    )
    watch_max_streams_per_user: int = Field(
        10,
        ge=1,
        description="WatchVideo streams one user may hold open at once on one Metadata replica (RESOURCE_EXHAUSTED beyond).",
    )
    video_event_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often the Upload and Transcode services ask for new video events (a deleted video's objects are removed within about this long).",
    )
    video_event_retention_seconds: float = Field(
        7 * 24 * 3600,
        gt=0,
        description="Video events (ListVideoEvents: the deletions the services clean up after) are kept this long; a service down for longer misses older ones.",
    )

    # --- auth ----------------------------------------------------------------------------
    signing_keys: SecretStr | None = Field(
        None,
        description="Ed25519 private keys of the identities this process signs tokens as, `identity=key,…` (streamify.core.token_keys; `streamify keys` makes a set). Default in embedded mode: the dev keys in data_dir.",
    )
    trusted_keys: str | None = Field(
        None,
        description="Ed25519 public keys servers accept bearer tokens from, `identity=key,…`. Required unless embedded.",
    )
    jwt_issuer: str = Field("streamify", description="`iss` claim minted and required on tokens.")
    embedded: bool = Field(
        False,
        description="Single-machine mode: allows development keys and secrets kept in data_dir.",
    )

    # --- this process's endpoints ----------------------------------------------------------
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC port of this process (0 = pick a free one)."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics port of this process (0 = off)."
    )
    shutdown_grace_seconds: float = Field(
        5.0, ge=0, description="On SIGTERM: health goes NOT_SERVING, in-flight calls get this long."
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_format: str = Field(
        "json", pattern="^(json|text)$", description="`json` (one object per line) or `text`."
    )

    # --- how services reach each other and the outside --------------------------------------
    metadata_target: str = Field(
        "127.0.0.1:50051",
        description="gRPC address of the Metadata service (for Upload/Transcode).",
    )
    cdn_base_url: str = Field(
        "http://127.0.0.1:8080/media",
        description="Base URL of the media CDN; playback and poster URLs start with it.",
    )
    cdn_cloudfront_distribution_id: str = Field(
        "",
        description="CloudFront distribution serving the media bucket (EKS): a deleted video's objects are invalidated there. Empty: no CloudFront.",
    )
    page_token_secret: SecretStr | None = Field(
        None,
        description="HMAC key of ListVideos page tokens (Metadata only); at least 32 bytes. Required unless embedded.",
    )
    reflection_all_services: bool = Field(
        False,
        description="Each service's reflection also lists every streamify.v1 service (so grpcurl through the gateway sees them all).",
    )
    media_authz_cache_seconds: float = Field(
        5.0, ge=0, description="How long the /media access check remembers a video's visibility."
    )

    # --- buckets (the S3 API itself: S3Settings) ------------------------------------------
    uploads_bucket: str = Field(
        "streamify-uploads",
        description="Bucket of raw uploads (written by browsers through pre-signed URLs).",
    )
    media_bucket: str = Field(
        "streamify-media",
        description="Bucket of transcoded HLS output and posters (origin of the /media CDN route).",
    )

    orchestrator_target: str = Field(
        "127.0.0.1:50053", description="gRPC address of a transcode orchestrator (for workers)."
    )
    # --- the SQS queue backend (QueueSettings) ------------------------------------------------
    sqs_endpoint_url: str | None = Field(
        None,
        description="SQS API endpoint (a local stand-in such as moto). Default: AWS SQS of s3_region.",
    )


def _flat_fields() -> dict[str, Any]:
    return {
        f"{section.PREFIX}{name}": (field.annotation, copy.copy(field))
        for section in SECTIONS
        for name, field in section.model_fields.items()
    }


# The type checker sees Settings without the flat section fields: code must read a section.
if TYPE_CHECKING:
    _AllSettings = _CoreSettings
else:
    _AllSettings = create_model("_AllSettings", __base__=_CoreSettings, **_flat_fields())


class Settings(_AllSettings):
    """Every setting of every process (each reads the concerns it needs)."""

    @field_validator("data_dir", "worker_work_dir", mode="after")
    @classmethod
    def _absolute(cls, path: Path | str | None) -> Path | str | None:
        """Relative paths are resolved once, against the directory the command was run in, so
        a child process started in another working directory sees the same place."""
        if path is None:
            return None
        absolute = Path(path).expanduser().absolute()
        return absolute if isinstance(path, Path) else str(absolute)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'streamify.db').resolve()}"

    def section(self, kind: type[S]) -> S:
        """The typed settings of one concern, from the flat fields."""
        return kind(**{name: getattr(self, f"{kind.PREFIX}{name}") for name in kind.model_fields})

    cache = SectionView(CacheSettings)
    media_grant = SectionView(MediaGrantSettings)
    s3 = SectionView(S3Settings)
    upload = SectionView(UploadSettings)
    transcode = SectionView(TranscodeSettings)
    worker = SectionView(WorkerSettings)
    queue = SectionView(QueueSettings)
    seaweedfs = SectionView(SeaweedFSSettings)


def settings_table() -> str:
    """The Markdown table of every setting, as docs/operations.md shows it (a test keeps them equal)."""
    lines = ["| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = str(field.annotation).replace("<class '", "").replace("'>", "")
        kind = kind.replace("pydantic.types.", "").replace("pathlib.", "").replace(" | None", "")
        default = "(unset)" if field.default is None else f"`{field.default}`"
        lines.append(f"| `STREAMIFY_{name.upper()}` | {kind} | {default} | {field.description} |")
    return "\n".join(lines)
