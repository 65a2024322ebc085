"""The video lifecycle against a model of it, and page tokens a client cannot forge.

The model is the lifecycle as the service promises it (state_machine's docstring and
docs/architecture.md), written out here independently: a status report is accepted exactly
when the model accepts it, for every pair of statuses and along any sequence of reports."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamify.metadata import state_machine as sm
from streamify.metadata.page_tokens import InvalidPageToken, PagePosition, PageTokenCodec

pytestmark = pytest.mark.unit

STATUSES = [sm.UPLOADING, sm.UPLOADED, sm.PROCESSING, sm.READY, sm.FAILED]
UNKNOWN = [0, 99]  # UNSPECIFIED and a number from a newer proto: never a lifecycle step
FORWARD = {sm.UPLOADING: sm.UPLOADED, sm.UPLOADED: sm.PROCESSING, sm.PROCESSING: sm.READY}
MODEL_TERMINAL = {sm.READY, sm.FAILED}  # the pipeline does not move a video on from these
RETRIED_FROM_FAILED = {sm.UPLOADED, sm.PROCESSING}  # a failed transcode is retried


def model_allows(current: int, new: int) -> bool:
    if new == current:
        return True  # a retried status report; PROCESSING repeats carry progress
    if current not in STATUSES:
        return False
    if FORWARD.get(current) == new:
        return True
    if new == sm.FAILED:
        return current not in MODEL_TERMINAL
    if current == sm.FAILED:
        return new in RETRIED_FROM_FAILED
    return False


@pytest.mark.parametrize(("current", "new"), list(itertools.product(STATUSES + UNKNOWN, repeat=2)))
def test_every_status_report_is_accepted_exactly_when_the_lifecycle_allows_it(current, new):
    assert sm.is_allowed(current, new) == model_allows(current, new)


def test_the_terminal_statuses_are_ready_and_failed():
    # WatchVideo ends its stream at these; a repeated report of one changes nothing
    assert sm.TERMINAL == MODEL_TERMINAL


def test_a_failed_video_can_be_retried_but_never_goes_back_to_uploading():
    assert sm.is_allowed(sm.FAILED, sm.UPLOADED)  # the upload completed again: transcode anew
    assert sm.is_allowed(sm.FAILED, sm.PROCESSING)
    assert not sm.is_allowed(sm.FAILED, sm.UPLOADING)  # the source exists: no second upload
    assert sm.is_allowed(sm.UPLOADED, sm.FAILED)  # e.g. the transcode job could not be created


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (sm.UPLOADING, "UPLOADING"),
        (sm.UPLOADED, "UPLOADED"),
        (sm.PROCESSING, "PROCESSING"),
        (sm.READY, "READY"),
        (sm.FAILED, "FAILED"),
        (99, "99"),
    ],
)
def test_statuses_are_named_in_error_messages_without_the_enum_prefix(status, label):
    # "videos/x is READY and cannot become UPLOADING"
    assert sm.status_label(status) == label


class VideoLifecycle(RuleBasedStateMachine):
    """One video receiving status reports in any order: the service's answer follows the model,
    and an accepted report moves the video."""

    def __init__(self) -> None:
        super().__init__()
        self.status = sm.UPLOADING  # CreateVideo starts here
        self.history = [self.status]

    @rule(new=st.sampled_from(STATUSES + UNKNOWN))
    def report(self, new: int) -> None:
        allowed = sm.is_allowed(self.status, new)
        assert allowed == model_allows(self.status, new), (self.history, new)
        if allowed:
            self.status = new
            self.history.append(new)

    @invariant()
    def ready_stays_reachable_until_the_video_is_ready(self) -> None:
        # from every status but READY, accepted reports can still lead to READY
        seen, frontier = {self.status}, [self.status]
        while frontier:
            s = frontier.pop()
            for n in STATUSES:
                if n not in seen and sm.is_allowed(s, n):
                    seen.add(n)
                    frontier.append(n)
        assert (sm.READY in seen) and (self.status == sm.READY or sm.FAILED in seen)

    @invariant()
    def ready_is_final(self) -> None:
        if sm.READY in self.history:
            assert self.status == sm.READY


TestVideoLifecycle = VideoLifecycle.TestCase


# --- page tokens ----------------------------------------------------------------------------

KEY = b"k" * 32
QUERY = "alice|0|False"


def test_a_token_issued_by_an_earlier_server_still_decodes():
    # Tokens outlive a deploy (a client pages on while replicas restart): the format is fixed.
    # This token was issued for (1_700_000_000_123_456, "abc") under KEY and QUERY.
    token = "vC3ZSs0U7KgmyPdO09Pw4VsiYWxpY2V8MHxGYWxzZSIsMTcwMDAwMDAwMDEyMzQ1NiwiYWJjIl0"
    codec = PageTokenCodec(KEY)
    assert codec.encode(QUERY, PagePosition(1_700_000_000_123_456, "abc")) == token
    assert codec.decode(QUERY, token) == PagePosition(1_700_000_000_123_456, "abc")


def test_a_client_cannot_forge_a_position_by_guessing_a_short_signature():
    # A forger who knows the format writes the position they want and tries every 2-byte
    # signature: with a full-length HMAC none of the 65,536 guesses is accepted.
    codec = PageTokenCodec(KEY)
    payload = json.dumps([QUERY, 1, "zzz"], separators=(",", ":")).encode()
    accepted = 0
    for guess in range(1 << 16):
        forged = base64.urlsafe_b64encode(guess.to_bytes(2, "big") + payload).rstrip(b"=").decode()
        try:
            codec.decode(QUERY, forged)
        except InvalidPageToken:
            continue
        accepted += 1
    assert accepted == 0


@given(
    query=st.text(max_size=40),
    create_time_us=st.integers(min_value=0, max_value=2**63 - 1),
    video_id=st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
)
def test_every_position_round_trips_for_its_own_query_only(query, create_time_us, video_id):
    codec = PageTokenCodec(KEY)
    position = PagePosition(create_time_us, video_id)
    token = codec.encode(query, position)
    assert "=" not in token and token.isascii()  # URL-safe, no padding: fits a query string
    assert codec.decode(query, token) == position
    with pytest.raises(InvalidPageToken, match="different query"):
        codec.decode(query + "x", token)


@given(index=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_09"))
def test_no_single_character_edit_of_a_token_is_accepted(index, replacement):
    codec = PageTokenCodec(KEY)
    token = codec.encode(QUERY, PagePosition(1_700_000_000_123_456, "abc"))
    i = index % len(token)
    edited = token[:i] + replacement + token[i + 1 :]
    if edited != token and base64.urlsafe_b64decode(edited + "==") != base64.urlsafe_b64decode(
        token + "=="
    ):
        with pytest.raises(InvalidPageToken):
            codec.decode(QUERY, edited)


@pytest.mark.parametrize("token", ["", "AAAA", "A" * 21, "!!!!", "vC3ZSs0U7KgmyPdO09Pw4Q"])
def test_short_or_malformed_tokens_are_refused(token):
    # too short to hold a signature, not base64, or a signature with nothing signed
    with pytest.raises(InvalidPageToken, match="not a token this server issued"):
        PageTokenCodec(KEY).decode(QUERY, token)
