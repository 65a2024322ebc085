"""Metadata service rules that need no I/O: lifecycle, page tokens, ids."""

import re

import pytest

from streamify.metadata import state_machine as sm
from streamify.metadata.page_tokens import InvalidPageToken, PagePosition, PageTokenCodec
from streamify.metadata.service import new_video_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (sm.UPLOADING, sm.UPLOADED),
        (sm.UPLOADED, sm.PROCESSING),
        (sm.PROCESSING, sm.READY),
        (sm.UPLOADING, sm.FAILED),
        (sm.PROCESSING, sm.FAILED),
        (sm.FAILED, sm.PROCESSING),
        (sm.PROCESSING, sm.PROCESSING),
        (sm.READY, sm.READY),
    ],
)
def test_lifecycle_allows_forward_moves_failures_and_repeats(current, new):
    assert sm.is_allowed(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (sm.UPLOADING, sm.PROCESSING),
        (sm.UPLOADING, sm.READY),
        (sm.UPLOADED, sm.READY),
        (sm.READY, sm.UPLOADING),
        (sm.READY, sm.FAILED),
        (sm.FAILED, sm.READY),
        (sm.PROCESSING, sm.UPLOADED),
    ],
)
def test_lifecycle_refuses_skips_and_moves_out_of_ready(current, new):
    assert not sm.is_allowed(current, new)


def test_page_token_round_trips_for_the_same_query():
    codec = PageTokenCodec(b"k" * 32)
    token = codec.encode("alice|0|False", PagePosition(1_700_000_000_123_456, "abc"))
    assert codec.decode("alice|0|False", token) == PagePosition(1_700_000_000_123_456, "abc")


def test_page_token_cannot_be_reused_for_another_query():
    codec = PageTokenCodec(b"k" * 32)
    token = codec.encode("alice|0|False", PagePosition(1, "abc"))
    with pytest.raises(InvalidPageToken, match="different query"):
        codec.decode("bob|0|False", token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "A" + t[1:] if t[0] != "A" else "B" + t[1:],
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_tampered_or_foreign_page_tokens_are_refused(mangle):
    codec = PageTokenCodec(b"k" * 32)
    token = codec.encode("alice|0|False", PagePosition(1, "abc"))
    with pytest.raises(InvalidPageToken):
        codec.decode("alice|0|False", mangle(token))
    other_server = PageTokenCodec(b"x" * 32)
    with pytest.raises(InvalidPageToken):
        other_server.decode("alice|0|False", token)


def test_video_ids_fit_the_resource_name_rule():
    ids = {new_video_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", i) for i in ids)
