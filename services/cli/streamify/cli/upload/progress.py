"""What the user sees while an upload runs: the bytes sent (shared by the sending threads), the
progress line (rewritten on a TTY, plain lines otherwise, nothing when quiet), and the line a
video's status is described with while it is followed."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO

from streamify.core.humanize import human_bytes, human_duration
from streamify.v1.video_pb2 import Video, VideoStatus

MiB = 1024 * 1024


def format_progress(sent: int, total: int, rate: float | None) -> str:
    """One progress line: '5.0 MiB / 12.0 MiB  41.7%  3.2 MiB/s  ETA 0:02'."""
    percent = 100.0 * sent / total if total else 100.0
    if rate and rate > 0:
        speed = f"{rate / MiB:.1f} MiB/s"
        eta = "ETA " + human_duration((total - sent) / rate)
    else:
        speed, eta = "-- MiB/s", "ETA --:--"
    return f"{human_bytes(sent)} / {human_bytes(total)}  {percent:5.1f}%  {speed}  {eta}"


def describe_video(video: Video) -> str:
    """'PROCESSING 3/9 tasks (encode)' / 'UPLOADED' / 'FAILED: reason'."""
    label: str = VideoStatus.Name(video.status).removeprefix("VIDEO_STATUS_")
    if video.status == VideoStatus.VIDEO_STATUS_PROCESSING and video.progress.total_tasks:
        p = video.progress
        return f"{label} {p.completed_tasks}/{p.total_tasks} tasks" + (
            f" ({p.stage})" if p.stage else ""
        )
    if video.status == VideoStatus.VIDEO_STATUS_FAILED:
        return f"{label}: {video.failure_reason}"
    return label


class Progress:
    """Bytes sent, shared by the sending threads; `already` bytes were sent by an earlier run."""

    def __init__(
        self, total: int, already: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.already = already
        self._sent = 0
        self._lock = threading.Lock()
        self._clock = clock
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])

    def add(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def take_back(self, n: int) -> None:
        """A failed attempt's bytes do not count."""
        with self._lock:
            self._sent -= n

    def average_rate(self) -> float | None:
        elapsed = self._clock() - self._started
        return self._sent / elapsed if elapsed > 0 else None

    @property
    def sent_this_run(self) -> int:
        return self._sent

    def snapshot(self) -> tuple[int, float | None]:
        """(bytes done including earlier runs, recent rate in bytes/s over the last ~10 s)."""
        now = self._clock()
        with self._lock:
            sent = self._sent
            self._samples.append((now, sent))
            while len(self._samples) > 2 and now - self._samples[1][0] >= 10:
                self._samples.popleft()
        t0, s0 = self._samples[0]
        rate = (sent - s0) / (now - t0) if now - t0 > 0.2 else None
        return min(self.total, self.already + sent), rate


class ProgressReporter:
    """Prints progress to `stream`: one rewritten line on a TTY, plain lines every
    `plain_interval` seconds otherwise, nothing when quiet."""

    def __init__(
        self,
        progress: Progress,
        stream: IO[str],
        *,
        quiet: bool = False,
        tty: bool | None = None,
        plain_interval: float = 5.0,
    ) -> None:
        self._progress = progress
        self._stream = stream
        self._quiet = quiet
        self._tty = stream.isatty() if tty is None else tty
        self._interval = 0.25 if self._tty else plain_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProgressReporter:
        if not self._quiet:
            self._thread = threading.Thread(target=self._run, name="upload-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if exc_type is None:
                self._print(final=True)
            elif self._tty:
                self._stream.write("\n")
                self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._print()

    def _print(self, final: bool = False) -> None:
        done, rate = self._progress.snapshot()
        if final:
            rate = self._progress.average_rate()
        line = format_progress(done, self._progress.total, rate)
        if self._tty:
            self._stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self._stream.write(("sent " if final else "") + line + "\n")
        self._stream.flush()
