"""The upload client's pieces without servers: part slicing and signing batches, the retry
schedule, resume-state keying, the progress line, content types, and the retry/re-subscribe
decisions driven by fakes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
import requests

from streamify.cli.upload import transport
from streamify.cli.upload.cli import default_subject
from streamify.cli.upload.errors import (
    ServerRefused,
    TranscodeFailed,
    TransferFailed,
    UsageError,
    _Cancelled,
)
from streamify.cli.upload.progress import Progress, describe_video, format_progress
from streamify.cli.upload.resume import (
    StateStore,
    UploadStateFile,
    file_key,
    request_id_for,
    state_dir,
)
from streamify.cli.upload.source import _Source, guess_content_type
from streamify.cli.upload.transport import (
    BACKOFF_CAP_SECONDS,
    PUT_ATTEMPTS,
    FileSlice,
    PartSlice,
    Uploader,
    _UrlBook,
    backoff_delay,
    batches,
    part_slices,
    s3_error_summary,
    watch_video,
)
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.video_pb2 import Progress as VideoProgress
from streamify.v1.video_pb2 import Video, VideoStatus

pytestmark = pytest.mark.unit
MiB = 1024 * 1024


# --- part slicing and batching -------------------------------------------------------------------


def test_parts_cover_the_file_exactly_and_only_the_last_is_short():
    size = 12 * MiB + 12345
    parts = part_slices(size, 5 * MiB, 3)
    assert [(p.number, p.offset, p.length) for p in parts] == [
        (1, 0, 5 * MiB),
        (2, 5 * MiB, 5 * MiB),
        (3, 10 * MiB, 2 * MiB + 12345),
    ]
    assert sum(p.length for p in parts) == size


def test_a_file_of_whole_parts_has_no_short_part():
    assert [p.length for p in part_slices(10 * MiB, 5 * MiB, 2)] == [5 * MiB, 5 * MiB]
    assert [p.length for p in part_slices(1, 5 * MiB, 1)] == [1]


@pytest.mark.parametrize(
    ("size", "part", "count"), [(10 * MiB, 5 * MiB, 3), (11 * MiB, 5 * MiB, 2), (0, 5, 1)]
)
def test_a_plan_that_does_not_cover_the_file_is_rejected(size, part, count):
    with pytest.raises(ValueError):
        part_slices(size, part, count)


def test_batches_hold_at_most_100_numbers_in_order():
    numbers = list(range(1, 251))
    cut = batches(numbers)
    assert [len(b) for b in cut] == [100, 100, 50]
    assert [n for b in cut for n in b] == numbers
    assert batches([]) == []


class FakeSigner:
    """Stands in for Uploader._rpc("SignParts", ...): records every batch it signs."""

    def __init__(self, expires_in: float = 600) -> None:
        self.batches: list[list[int]] = []
        self.expires_in = expires_in

    def _rpc(self, method, request):
        assert method == "SignParts"
        numbers = list(request.part_numbers)
        assert 1 <= len(numbers) <= 100 and len(set(numbers)) == len(numbers)
        self.batches.append(numbers)
        expires = int(time.time() + self.expires_in)
        return api.SignPartsResponse(
            parts=[
                api.SignedPart(
                    part_number=n,
                    url=f"https://s3/part/{n}/v{len(self.batches)}",
                    expire_time={"seconds": expires},
                )
                for n in numbers
            ]
        )


def test_urls_are_signed_in_batches_ahead_of_need_and_never_twice():
    signer = FakeSigner()
    order = list(range(1, 251))
    book = _UrlBook(signer, "uploads/u", order, parallel=4)
    assert book.get(1).startswith("https://s3/part/1/")
    assert signer.batches == [list(range(1, 101))]
    for n in range(2, 93):  # plenty signed ahead: no more calls
        book.get(n)
    assert len(signer.batches) == 1
    book.get(93)  # fewer than 2 * parallel left ahead: the next batch is signed now
    assert signer.batches[1] == list(range(101, 201))
    for n in range(94, 251):
        book.get(n)
    signed = [n for b in signer.batches for n in b]
    assert sorted(signed) == order  # every part signed exactly once


def test_resuming_signs_only_the_parts_still_to_send():
    signer = FakeSigner()
    book = _UrlBook(signer, "uploads/u", [2, 5, 9], parallel=2)
    for n in (2, 5, 9):
        book.get(n)
    assert signer.batches == [[2, 5, 9]]


def test_a_refused_or_expiring_url_is_signed_again_alone():
    signer = FakeSigner()
    book = _UrlBook(signer, "uploads/u", list(range(1, 11)), parallel=1)
    first = book.get(1)
    again = book.get(1, fresh=True)  # the 403 path
    assert again != first and signer.batches[-1] == [1]
    short = FakeSigner(expires_in=5)  # closer to expiry than the safety margin
    book = _UrlBook(short, "uploads/u", [1, 2], parallel=1)
    book.get(1)
    assert short.batches == [[1, 2], [1]]


# --- backoff -----------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all():
    lows = [backoff_delay(a, base=0.5, cap=20, rand=lambda: 0.0) for a in range(8)]
    highs = [backoff_delay(a, base=0.5, cap=20, rand=lambda: 1.0) for a in range(8)]
    assert highs == [0.5, 1, 2, 4, 8, 16, 20, 20]
    assert lows == [h / 2 for h in highs]
    assert backoff_delay(10_000, rand=lambda: 1.0) == BACKOFF_CAP_SECONDS  # no overflow


# --- resume state -----------------------------------------------------------------------------------


def test_state_key_follows_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = file_key(tmp_path / "a.mp4", 100, 1_700_000_000_000_000_000)
    assert key == file_key(Path("a.mp4"), 100, 1_700_000_000_000_000_000)  # relative = absolute
    assert key != file_key(tmp_path / "a.mp4", 101, 1_700_000_000_000_000_000)
    assert key != file_key(tmp_path / "a.mp4", 100, 1_700_000_000_000_000_001)
    assert key != file_key(tmp_path / "b.mp4", 100, 1_700_000_000_000_000_000)


def test_request_ids_fit_the_api_and_change_with_the_generation():
    key = file_key(Path("/x.mp4"), 1, 1)
    ids = {request_id_for(key, g) for g in range(3)}
    assert len(ids) == 3 and all(len(i) <= 64 for i in ids)
    assert request_id_for(key, 0) == request_id_for(key, 0)


def test_state_dir_precedence():
    assert state_dir({"STREAMIFY_UPLOAD_STATE_DIR": "/s", "XDG_CACHE_HOME": "/c"}) == Path("/s")
    assert state_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/streamify/uploads")
    assert state_dir({"HOME": "/h"}) == Path("/h/.cache/streamify/uploads")


def test_state_store_round_trip_and_damage(tmp_path):
    store = StateStore(tmp_path / "state")
    key = file_key(tmp_path / "a.mp4", 10, 20)
    assert store.load(key) is None
    state = UploadStateFile(path="/a.mp4", size=10, mtime_ns=20, generation=1, upload="uploads/u")
    store.save(key, state)
    assert store.load(key) == state
    assert [p.name for p in (tmp_path / "state").iterdir()] == [
        f"{key[:32]}.json"
    ]  # no temp files left
    store.path_for(key).write_text("{not json")
    assert store.load(key) is None
    store.remove(key)
    store.remove(key)  # removing twice is fine
    assert not store.path_for(key).exists()


def test_state_of_an_earlier_version_of_the_file_is_found_as_stale(tmp_path):
    store = StateStore(tmp_path)
    old_key, new_key = file_key(Path("/v.mp4"), 10, 1), file_key(Path("/v.mp4"), 11, 2)
    store.save(old_key, UploadStateFile(path="/v.mp4", size=10, mtime_ns=1, upload="uploads/old"))
    store.save(file_key(Path("/w.mp4"), 10, 1), UploadStateFile(path="/w.mp4", size=10, mtime_ns=1))
    store.save(new_key, UploadStateFile(path="/v.mp4", size=11, mtime_ns=2))
    [(file, state)] = store.others_for("/v.mp4", new_key)
    assert file == store.path_for(old_key) and state.upload == "uploads/old"


# --- progress ------------------------------------------------------------------------------------------


def test_progress_line():
    assert (
        format_progress(5 * MiB, 12 * MiB, 1 * MiB)
        == "5.0 MiB / 12.0 MiB   41.7%  1.0 MiB/s  ETA 0:07"
    )
    assert format_progress(0, 3 * 1024**3, None) == "0 B / 3.0 GiB    0.0%  -- MiB/s  ETA --:--"
    assert format_progress(0, 3723 * MiB, 1 * MiB).endswith("ETA 1:02:03")
    assert format_progress(12 * MiB, 12 * MiB, 50 * MiB).endswith("100.0%  50.0 MiB/s  ETA 0:00")


def test_progress_rate_is_recent_and_failed_attempts_do_not_count():
    now = [0.0]
    progress = Progress(total=100 * MiB, already=10 * MiB, clock=lambda: now[0])
    progress.add(4 * MiB)
    now[0] = 2.0
    assert progress.snapshot() == (14 * MiB, 2 * MiB)
    progress.take_back(4 * MiB)  # that attempt failed
    now[0] = 4.0
    assert progress.snapshot()[0] == 10 * MiB


# --- inputs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.mp4", "video/mp4"),
        ("A.MOV", "video/quicktime"),
        ("a.mkv", "video/x-matroska"),
        ("a.webm", "video/webm"),
        ("a.ts", "video/mp2t"),
        ("a.3gp", "video/3gpp"),
        ("recording", "video/mp4"),
        ("a.unknownext", "video/mp4"),
    ],
)
def test_content_type_is_guessed_from_the_name(name, expected):
    assert guess_content_type(Path(name)) == expected


@pytest.mark.parametrize("name", ["notes.txt", "photo.png", "song.mp3", "doc.pdf"])
def test_non_video_files_are_refused(name):
    with pytest.raises(UsageError, match="not a video") as info:
        guess_content_type(Path(name))
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("alice", "alice"),
        ("Bob", "bob"),
        ("j.doe@corp", "j.doecorp"),
        ("", "alice"),
        ("__", "alice"),
        (None, "alice"),
    ],
)
def test_default_subject_comes_from_user(user, subject):
    assert default_subject({} if user is None else {"USER": user}) == subject


def test_s3_errors_are_summarised():
    body = "<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    assert s3_error_summary(body) == "AccessDenied: Request has expired"
    assert s3_error_summary("bad gateway") == "bad gateway"


def test_video_statuses_are_described():
    processing = Video(
        status=VideoStatus.VIDEO_STATUS_PROCESSING,
        progress=VideoProgress(completed_tasks=3, total_tasks=9, stage="encode"),
    )
    assert describe_video(processing) == "PROCESSING 3/9 tasks (encode)"
    assert describe_video(Video(status=VideoStatus.VIDEO_STATUS_UPLOADED)) == "UPLOADED"
    failed = Video(status=VideoStatus.VIDEO_STATUS_FAILED, failure_reason="no video stream")
    assert describe_video(failed) == "FAILED: no video stream"


# --- reading slices ------------------------------------------------------------------------------------


def test_a_file_slice_streams_only_its_range(tmp_path):
    path = tmp_path / "f.mp4"
    path.write_bytes(bytes(range(256)) * 4)
    progress = Progress(total=1024)
    with FileSlice(path, 100, 300, progress=progress) as body:
        assert len(body) == 300
        data = b"".join(iter(lambda: body.read(64), b""))
    assert data == (bytes(range(256)) * 4)[100:400] and progress.sent_this_run == 300
    cancel = threading.Event()
    with FileSlice(path, 0, 10, cancel=cancel) as body:
        cancel.set()
        with pytest.raises(_Cancelled):
            body.read(5)


# --- retrying a PUT ----------------------------------------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, etag: str = "", text: str = "") -> None:
        self.status_code, self.text = status, text
        self.headers = {"ETag": etag} if etag else {}


class FakeSession:
    def __init__(self, outcomes) -> None:
        self.outcomes = list(outcomes)
        self.bodies: list[bytes] = []

    def put(self, url, data, headers, timeout):
        self.bodies.append(b"".join(data))  # reads the whole slice, like a real send
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def uploader(tmp_path, monkeypatch):
    monkeypatch.setattr(transport, "backoff_delay", lambda attempt, **_: 0.0)
    said: list[str] = []
    up = Uploader("127.0.0.1:1", "token", state_directory=tmp_path / "state", say=said.append)
    up.said = said  # type: ignore[attr-defined]
    yield up
    up.close()


def put_part(uploader, tmp_path, outcomes):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"0123456789")
    source = _Source(path, 10, 0, "video/mp4")
    signs: list[bool] = []

    def signed(fresh: bool) -> str:
        signs.append(fresh)
        return f"https://s3/part?v={len(signs)}"

    session = FakeSession(outcomes)
    progress = Progress(total=10)
    etag = uploader._put(
        session, source, PartSlice(2, 3, 4), signed, progress, threading.Event(), what="part 2"
    )
    return etag, session, signs, progress


def test_transient_failures_are_retried(uploader, tmp_path):
    etag, session, signs, progress = put_part(
        uploader,
        tmp_path,
        [
            FakeResponse(503, text="<Error><Code>SlowDown</Code></Error>"),
            requests.ConnectionError("reset by peer"),
            FakeResponse(429),
            FakeResponse(408),
            FakeResponse(200, etag='"abc"'),
        ],
    )
    assert etag == '"abc"' and session.bodies == [b"3456"] * 5
    assert signs == [False] * 5 and progress.sent_this_run == 4  # failed attempts taken back
    assert len(uploader.said) == 4 and "part 2: HTTP 503 SlowDown; retrying" in uploader.said[0]


def test_a_403_signs_the_url_again(uploader, tmp_path):
    etag, _, signs, _ = put_part(
        uploader, tmp_path, [FakeResponse(403), FakeResponse(200, etag='"e"')]
    )
    assert etag == '"e"' and signs == [False, True]


def test_a_403_that_persists_fails_the_upload(uploader, tmp_path):
    with pytest.raises(TransferFailed, match="HTTP 403 AccessDenied"):
        put_part(uploader, tmp_path, [FakeResponse(403, text="<Code>AccessDenied</Code>")] * 4)


def test_client_errors_are_not_retried(uploader, tmp_path):
    with pytest.raises(TransferFailed, match="storage refused part 2: HTTP 400") as info:
        put_part(uploader, tmp_path, [FakeResponse(400, text="<Code>BadDigest</Code>")])
    assert info.value.exit_code == 1


def test_retries_are_bounded(uploader, tmp_path):
    with pytest.raises(TransferFailed, match=f"failed {PUT_ATTEMPTS} times; last error: HTTP 500"):
        put_part(uploader, tmp_path, [FakeResponse(500)] * PUT_ATTEMPTS)


# --- following a video -------------------------------------------------------------------------------


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return ()


def fake_watch(monkeypatch, streams):
    """Each WatchVideo call plays the next script: Video messages, then maybe an error."""
    calls = []

    class Stub:
        def __init__(self, channel) -> None:
            pass

        def WatchVideo(self, request, metadata):
            calls.append(request.name)
            script = streams[len(calls) - 1]

            def play():
                for item in script:
                    if isinstance(item, Exception):
                        raise item
                    yield type("Msg", (), {"video": item})()

            return play()

    monkeypatch.setattr(transport.metadata_service_pb2_grpc, "MetadataServiceStub", Stub)
    monkeypatch.setattr(transport, "backoff_delay", lambda attempt, **_: 0.0)
    return calls


def video(status, **fields) -> Video:
    return Video(name="videos/v", status=status, **fields)


def test_watch_resubscribes_when_the_stream_breaks(monkeypatch):
    calls = fake_watch(
        monkeypatch,
        [
            [
                video(VideoStatus.VIDEO_STATUS_UPLOADED),
                FakeRpcError(grpc.StatusCode.UNAVAILABLE, "restarting"),
            ],
            [video(VideoStatus.VIDEO_STATUS_UPLOADED)],  # ended without a final status
            [
                video(
                    VideoStatus.VIDEO_STATUS_PROCESSING,
                    progress=VideoProgress(completed_tasks=3, total_tasks=9),
                ),
                video(VideoStatus.VIDEO_STATUS_READY, playback_url="https://cdn/v/master.m3u8"),
            ],
        ],
    )
    said: list[str] = []
    ready = watch_video("meta:1", "t", "videos/v", say=said.append, channel=object())
    assert ready.playback_url == "https://cdn/v/master.m3u8" and len(calls) == 3
    assert said == ["UPLOADED", "PROCESSING 3/9 tasks", "READY"]  # repeats are not printed


def test_watch_raises_transcode_failed(monkeypatch):
    fake_watch(
        monkeypatch, [[video(VideoStatus.VIDEO_STATUS_FAILED, failure_reason="no video stream")]]
    )
    with pytest.raises(TranscodeFailed, match="no video stream") as info:
        watch_video("meta:1", "t", "videos/v", say=lambda _: None, channel=object())
    assert info.value.exit_code == 4


def test_watch_does_not_retry_a_refusal(monkeypatch):
    fake_watch(
        monkeypatch, [[FakeRpcError(grpc.StatusCode.NOT_FOUND, "video 'videos/v' not found")]]
    )
    with pytest.raises(ServerRefused, match="NOT_FOUND") as info:
        watch_video("meta:1", "t", "videos/v", say=lambda _: None, channel=object())
    assert info.value.exit_code == 3


def test_watch_gives_up_after_many_broken_streams(monkeypatch):
    broken = [[FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down")]] * 3
    fake_watch(monkeypatch, broken)
    with pytest.raises(TransferFailed, match="lost the Metadata service"):
        watch_video("meta:1", "t", "videos/v", say=lambda _: None, channel=object(), attempts=3)
