"""Opaque, tamper-proof page tokens for keyset pagination.

A token records where the previous page ended (create time and id of its last video) and the
query it belongs to (owner and status filter). It is signed with HMAC-SHA256, so a client can
neither forge a position nor reuse a token with a different query to reach other data; a bad
token is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

_MAC_BYTES = 16


class InvalidPageToken(ValueError):
    pass


@dataclass(frozen=True)
class PagePosition:
    create_time_us: int
    video_id: str


class PageTokenCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, query: str, position: PagePosition) -> str:
        payload = json.dumps(
            [query, position.create_time_us, position.video_id], separators=(",", ":")
        ).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()

    def decode(self, query: str, token: str) -> PagePosition:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise InvalidPageToken("page_token is not a token this server issued") from exc
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):  # False for a short one too
            raise InvalidPageToken("page_token is not a token this server issued")
        token_query, create_time_us, video_id = json.loads(payload)
        if token_query != query:
            raise InvalidPageToken(
                "page_token belongs to a different query (owner or status changed)"
            )
        return PagePosition(int(create_time_us), str(video_id))
