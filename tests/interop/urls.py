"""Taking a playback URL apart the way an attacker (or a careless embedder) would: whatever grant
it carries -- a path segment ``grant.{expires}.{signature}/`` after ``/media/videos/{id}/`` or an
``Expires=&Signature=`` query -- can be dropped, tampered with or moved to another video."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode

_MEDIA = re.compile(
    r"^(?P<base>.*/media/videos/)(?P<id>[a-z0-9][a-z0-9-]{0,62})/"
    r"(?:(?P<grant>grant\.(?P<expires>\d+)\.(?P<sig>[A-Za-z0-9_-]+))/)?(?P<rest>[^?#]*)$"
)


@dataclass(frozen=True)
class MediaURL:
    base: str  # http://gw/media/videos/
    video_id: str
    grant: str  # "grant.E.S" path segment, or ""
    query: str  # the query (a query-string grant), or ""
    rest: str  # master.m3u8, 720p/index.m3u8, ...

    @classmethod
    def parse(cls, url: str) -> MediaURL:
        no_query, _, query = url.partition("?")
        m = _MEDIA.match(no_query)
        assert m, f"not a /media/videos/{{id}}/... URL: {url}"
        return cls(m["base"], m["id"], m["grant"] or "", query, m["rest"])

    @property
    def has_grant(self) -> bool:
        return bool(self.grant) or "Signature=" in self.query

    def __str__(self) -> str:
        path = f"{self.base}{self.video_id}/" + (f"{self.grant}/" if self.grant else "") + self.rest
        return path + (f"?{self.query}" if self.query else "")

    def at(self, rest: str) -> MediaURL:
        """The same video and grant, another object (`720p/seg_00000.m4s`)."""
        return replace(self, rest=rest)

    def without_grant(self) -> MediaURL:
        return replace(self, grant="", query="")

    def tampered(self) -> MediaURL:
        """One character of the signature changed."""
        if self.grant:
            head, sig = self.grant.rsplit(".", 1)
            return replace(self, grant=f"{head}.{_flip(sig[0])}{sig[1:]}")
        pairs = parse_qsl(self.query, keep_blank_values=True)
        assert any(k == "Signature" for k, _ in pairs), f"no grant to tamper with in {self}"
        pairs = [(k, _flip(v[0]) + v[1:] if k == "Signature" else v) for k, v in pairs]
        return replace(self, query=urlencode(pairs))

    def for_video(self, video_id: str) -> MediaURL:
        """This grant, presented for another video."""
        return replace(self, video_id=video_id)


def _flip(c: str) -> str:
    return "B" if c == "A" else "A"
