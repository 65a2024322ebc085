"""What the Upload service accepts, from settings."""

from __future__ import annotations

from dataclasses import dataclass

from streamify.core.config import Settings


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    single_put_max_bytes: int
    part_size_bytes: int
    url_ttl_seconds: int
    expiry_seconds: float
    max_pending_per_user: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(
            max_bytes=settings.upload_max_bytes,
            single_put_max_bytes=settings.upload_single_put_max_bytes,
            part_size_bytes=settings.upload_part_size_bytes,
            url_ttl_seconds=settings.upload_url_ttl_seconds,
            expiry_seconds=settings.upload_expiry_seconds,
            max_pending_per_user=settings.upload_max_pending_per_user,
        )
