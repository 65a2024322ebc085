"""A corpus of the recording shapes users upload, built with the ffmpeg CLI (Debian's
/usr/bin/ffmpeg), for the differential test against that same CLI
(tests/integration/test_transcode_corpus.py).

Every case is small (2-4 s, low resolution, except the two that need size) and says which
real-world upload it mimics. Files are built once into a cache directory
(``STREAMIFY_CORPUS_DIR``, default ``<tmp>/streamify-corpus``) under a name that includes a hash
of the case's recipe and of the ffmpeg version, so changing a recipe rebuilds only that case.

``reference(path)`` runs the ffmpeg CLI on a file the way a user would check it plays:
``ffmpeg -i INPUT -map 0:V:0`` decoded to a null-like sink (``framecrc``, which lists every
decoded frame with its timestamp). Its verdict is the oracle: ffmpeg exits 0 and decodes at
least one frame of a real video stream (``V``: cover art in a song is not video) = "ffmpeg
produces a valid output".

This module never skips: without /usr/bin/ffmpeg it raises (``./streamify test`` installs it).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

FFMPEG = "/usr/bin/ffmpeg"
# Bump to rebuild every case (e.g. after changing the helpers below).
GENERATOR_VERSION = "1"
# Each ffmpeg run is bounded (a guard against a hang, never a speed requirement).
FFMPEG_TIMEOUT = 300


def ffmpeg_path() -> str:
    path = FFMPEG if os.access(FFMPEG, os.X_OK) else shutil.which("ffmpeg")
    if not path:
        raise RuntimeError(
            "the corpus needs the ffmpeg CLI (/usr/bin/ffmpeg): apt-get install ffmpeg "
            "(./streamify test installs it)"
        )
    return path


@cache
def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_path(), "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def ff(*args: str | Path, cwd: Path | None = None) -> None:
    """Run ``ffmpeg -y ARGS`` quietly; raise with its stderr if it fails."""
    cmd = [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"corpus: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


# --- sources ------------------------------------------------------------------------------------


def video_src(size: str = "320x240", rate: str | int = 30, duration: float = 3.0) -> list[str]:
    """testsrc2 pictures (moving, so encoders and decoders do real work)."""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}"]


def tone_src(
    duration: float = 3.0, rate: int = 48_000, freq: int = 440, layout: str = "stereo"
) -> list[str]:
    return [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:sample_rate={rate}:duration={duration},"
        f"aformat=channel_layouts={layout}",
    ]


X264_FAST = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def _cut(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


# --- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    mimics: str  # the real-world upload this file stands for
    build: Callable[[Path, Path], None]  # (output path, scratch directory)
    # "reference": Streamify must agree with the ffmpeg CLI. "too_large": ffmpeg reads it, but
    # Streamify refuses it on purpose (beyond STREAMIFY_TRANSCODE_MAX_WIDTH/HEIGHT).
    expect: str = "reference"

    def recipe_hash(self) -> str:
        text = inspect.getsource(self.build) + self.filename + ffmpeg_version() + GENERATOR_VERSION
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _ts(
    path: Path, seconds: float, *, gop: int = 30, freq: int = 440, offset: float | None = None
) -> Path:
    """An H.264 + AAC MPEG-TS recording of `seconds` (a keyframe every `gop` frames), its
    clock starting at `offset` seconds when given (as a broadcast or a camera's would)."""
    shift = ["-output_ts_offset", str(offset)] if offset is not None else []
    ff(
        *video_src(duration=seconds),
        *tone_src(seconds, freq=freq),
        *X264_FAST,
        "-g",
        str(gop),
        "-c:a",
        "aac",
        *shift,
        "-f",
        "mpegts",
        path,
    )
    return path


def _ts_concat_reset(out: Path, tmp: Path) -> None:
    a, b = _ts(tmp / "a.ts", 2), _ts(tmp / "b.ts", 2, freq=660)
    out.write_bytes(a.read_bytes() + b.read_bytes())


def _ts_concat_jump(out: Path, tmp: Path) -> None:
    a, b = _ts(tmp / "a.ts", 2), _ts(tmp / "b.ts", 2, freq=660, offset=3600)
    out.write_bytes(a.read_bytes() + b.read_bytes())


def _ts_dropout(out: Path, tmp: Path) -> None:
    a = _ts(tmp / "a.ts", 1.5, gop=15)
    b = _ts(tmp / "b.ts", 1.5, gop=15, freq=660, offset=3.5)
    out.write_bytes(a.read_bytes() + b.read_bytes())


def _ts_pts_wrap(out: Path, tmp: Path) -> None:
    # 2^33 / 90 kHz = 95443.717 s: starting 1.5 s before it, the clock wraps to 0 mid-file.
    _ts(out, 3, offset=95442.2)


def _fragmented_mp4(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3),
        *tone_src(3),
        *X264_FAST,
        "-g",
        "30",
        "-c:a",
        "aac",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        out,
    )


def _edit_list_trim(out: Path, tmp: Path) -> None:
    full = tmp / "full.mp4"
    ff(
        *video_src(duration=5),
        *tone_src(5),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "60",
        "-c:a",
        "aac",
        full,
    )
    # Stream copy from a non-keyframe: the edit list starts the track 1.3 s into its media.
    ff("-ss", "1.3", "-i", full, "-t", "2.5", "-c", "copy", out)


def _audio_delay_edit_list(out: Path, tmp: Path) -> None:
    v, a = tmp / "v.mp4", tmp / "a.m4a"
    ff(*video_src(duration=3), *X264_FAST, v)
    ff(*tone_src(2.5), "-c:a", "aac", a)
    ff("-i", v, "-itsoffset", "0.5", "-i", a, "-map", "0:v", "-map", "1:a", "-c", "copy", out)


def _mpeg2_interlaced_pal(out: Path, tmp: Path) -> None:
    # `interlace` weaves two progressive 50 fps pictures into one 25 fps frame (two fields).
    ff(
        *video_src("720x576", 50, 3),
        *tone_src(3),
        "-vf",
        "interlace",
        "-c:v",
        "mpeg2video",
        "-flags",
        "+ilme+ildct",
        "-top",
        "1",
        "-aspect",
        "16:9",
        "-b:v",
        "3M",
        "-c:a",
        "mp2",
        "-b:a",
        "192k",
        "-f",
        "mpegts",
        out,
    )


def _h264_interlaced_sd(out: Path, tmp: Path) -> None:
    ff(
        *video_src("720x576", 50, 3),
        *tone_src(3),
        "-vf",
        "interlace",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-flags",
        "+ilme+ildct",
        "-x264-params",
        "tff=1",
        "-aspect",
        "4:3",
        "-c:a",
        "ac3",
        "-f",
        "mpegts",
        out,
    )


def _dvd_vob(out: Path, tmp: Path) -> None:
    ff(
        *video_src("720x576", 25, 3),
        *tone_src(3),
        "-c:v",
        "mpeg2video",
        "-b:v",
        "4M",
        "-aspect",
        "4:3",
        "-c:a",
        "ac3",
        "-b:a",
        "192k",
        "-f",
        "dvd",
        out,
    )


def _dv_anamorphic(out: Path, tmp: Path) -> None:
    ff(
        *video_src("720x480", "30000/1001", 2),
        *tone_src(2),
        "-c:v",
        "dvvideo",
        "-pix_fmt",
        "yuv411p",
        "-aspect",
        "16:9",
        "-c:a",
        "pcm_s16le",
        out,
    )


def _mkv_multi_audio(out: Path, tmp: Path) -> None:
    srt = tmp / "subs.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nHello\n")
    ff(
        *video_src(duration=3),
        *tone_src(3),
        *tone_src(3, freq=550, layout="5.1"),
        *tone_src(3, freq=880, layout="mono"),
        "-i",
        srt,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-map",
        "3:a",
        "-map",
        "4:s",
        *X264_FAST,
        "-c:a:0",
        "aac",
        "-c:a:1",
        "ac3",
        "-c:a:2",
        "libopus",
        "-c:s",
        "srt",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:1",
        "title=Commentary 5.1",
        "-metadata:s:a:2",
        "language=deu",
        out,
    )


def _mp4_two_audio_tracks(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3),
        *tone_src(3, rate=44_100),
        *tone_src(3, freq=880, layout="mono"),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        *X264_FAST,
        "-c:a",
        "aac",
        out,
    )


def _phone_hevc_rotated(out: Path, tmp: Path) -> None:
    ff(
        *video_src("480x270", 30, 3),
        *tone_src(3, layout="mono"),
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-x265-params",
        "log-level=error",
        "-tag:v",
        "hvc1",
        "-metadata:s:v:0",
        "rotate=90",
        "-c:a",
        "aac",
        out,
    )


def _phone_hevc_hdr(out: Path, tmp: Path) -> None:
    ff(
        *video_src("480x270", 30, 2),
        *tone_src(2),
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p10le",
        "-x265-params",
        "log-level=error",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "arib-std-b67",
        "-colorspace",
        "bt2020nc",
        "-tag:v",
        "hvc1",
        "-c:a",
        "aac",
        out,
    )


def _phone_h264_vfr_rotated(out: Path, tmp: Path) -> None:
    # A phone under load: frames 20-60 ms apart instead of 33 ms, and a 270° display matrix.
    ff(
        *video_src("480x270", 60, 3),
        *tone_src(3, rate=44_100),
        "-vf",
        "select='not(mod(n\\,3))+eq(mod(n\\,7)\\,1)',setpts=N/(30*TB)+0.013*sin(N)/TB",
        "-fps_mode",
        "vfr",
        "-video_track_timescale",
        "600",
        *X264_FAST,
        "-metadata:s:v:0",
        "rotate=270",
        "-c:a",
        "aac",
        out,
    )


def _screen_recording_vfr(out: Path, tmp: Path) -> None:
    # Frames only when the screen changes: bursts at 60 fps, then 1.2 s of nothing; 4:4:4.
    ff(
        *video_src("640x400", 60, 4),
        "-vf",
        "select='lt(mod(t\\,2)\\,0.8)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv444p",
        out,
    )


def _webm_mediarecorder(out: Path, tmp: Path) -> None:
    # What a browser's MediaRecorder writes: no duration, no cues (the `live` muxer mode).
    ff(
        *video_src(duration=3),
        *tone_src(3),
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "500k",
        "-c:a",
        "libopus",
        "-live",
        "1",
        "-f",
        "webm",
        out,
    )


def _webm_vp9(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3),
        *tone_src(3),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "400k",
        "-c:a",
        "libopus",
        out,
    )


def _mov_prores(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=2, rate=25),
        *tone_src(2),
        "-c:v",
        "prores",
        "-profile:v",
        "2",
        "-c:a",
        "pcm_s24le",
        out,
    )


def _avi_xvid(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3, rate=25),
        *tone_src(3, rate=44_100),
        "-c:v",
        "mpeg4",
        "-vtag",
        "XVID",
        "-bf",
        "2",
        "-q:v",
        "5",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        out,
    )


def _flv_h264(out: Path, tmp: Path) -> None:
    ff(*video_src(duration=3), *tone_src(3, rate=44_100), *X264_FAST, "-c:a", "aac", out)


def _flv_sorenson(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3, rate=25),
        *tone_src(3, rate=22_050),
        "-c:v",
        "flv",
        "-q:v",
        "6",
        "-c:a",
        "libmp3lame",
        out,
    )


def _mpeg1_ps(out: Path, tmp: Path) -> None:
    ff(
        *video_src("352x288", 25, 3),
        *tone_src(3, rate=44_100),
        "-c:v",
        "mpeg1video",
        "-b:v",
        "1M",
        "-c:a",
        "mp2",
        "-f",
        "mpeg",
        out,
    )


def _y4m(out: Path, tmp: Path) -> None:
    ff(*video_src("320x240", 15, 2), "-pix_fmt", "yuv420p", out)


def _ogg_theora(out: Path, tmp: Path) -> None:
    ff(
        *video_src(duration=3, rate=25),
        *tone_src(3, rate=44_100),
        "-c:v",
        "libtheora",
        "-q:v",
        "5",
        "-c:a",
        "libvorbis",
        out,
    )


def _3gp_h263(out: Path, tmp: Path) -> None:
    ff(
        *video_src("176x144", 15, 3),
        *tone_src(3, rate=8000, layout="mono"),
        "-c:v",
        "h263",
        "-c:a",
        "aac",
        "-b:a",
        "12k",
        out,
    )


def _mp3_cover_art(out: Path, tmp: Path) -> None:
    cover = tmp / "cover.jpg"
    ff("-f", "lavfi", "-i", "testsrc2=size=300x300:duration=0.04", "-frames:v", "1", cover)
    ff(
        *tone_src(3, rate=44_100),
        "-i",
        cover,
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "copy",
        "-disposition:v",
        "attached_pic",
        "-id3v2_version",
        "3",
        out,
    )


def _audio_only_wav(out: Path, tmp: Path) -> None:
    ff(*tone_src(2), "-c:a", "pcm_s16le", out)


def _truncated_ts(out: Path, tmp: Path) -> None:
    _cut(_ts(tmp / "full.ts", 4), out, 0.6)


def _truncated_mp4_faststart(out: Path, tmp: Path) -> None:
    full = tmp / "full.mp4"
    ff(
        *video_src(duration=4),
        *tone_src(4),
        *X264_FAST,
        "-g",
        "30",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        full,
    )
    _cut(full, out, 0.5)


def _truncated_mp4_moov_at_end(out: Path, tmp: Path) -> None:
    full = tmp / "full.mp4"
    ff(*video_src(duration=4), *tone_src(4), *X264_FAST, "-c:a", "aac", full)
    _cut(full, out, 0.5)


def _truncated_mkv(out: Path, tmp: Path) -> None:
    full = tmp / "full.mkv"
    ff(*video_src(duration=4), *tone_src(4), *X264_FAST, "-g", "30", "-c:a", "aac", full)
    _cut(full, out, 0.55)


def _corrupt_middle_mp4(out: Path, tmp: Path) -> None:
    full = tmp / "full.mp4"
    ff(
        *video_src(duration=3),
        *tone_src(3),
        *X264_FAST,
        "-g",
        "30",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        full,
    )
    data = bytearray(full.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = hashlib.sha256(b"bit rot").digest() * 128  # 4 KiB of noise
    out.write_bytes(bytes(data))


def _garbage_with_ftyp(out: Path, tmp: Path) -> None:
    noise = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4000))
    out.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + noise)


def _random_bytes(out: Path, tmp: Path) -> None:
    out.write_bytes(
        b"".join(hashlib.sha256(b"x" + i.to_bytes(4, "big")).digest() for i in range(6000))
    )


def _zero_length(out: Path, tmp: Path) -> None:
    out.write_bytes(b"")


def _text_renamed(out: Path, tmp: Path) -> None:
    out.write_text("Meeting notes\n\n- ship the corpus test\n- fix the edge cases\n" * 40)


def _html_error_page(out: Path, tmp: Path) -> None:
    out.write_text(
        "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>"
        "<body><h1>Forbidden</h1><p>You don't have permission.</p></body></html>\n"
    )


def _uhd_8k(out: Path, tmp: Path) -> None:
    ff(
        *video_src("7680x4320", 5, 1),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        "40",
        out,
    )


def _beyond_max_8k_dci(out: Path, tmp: Path) -> None:
    ff(
        *video_src("8192x4320", 5, 0.2),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        "45",
        out,
    )


CASES: tuple[Case, ...] = (
    Case(
        "ts-concat-clock-reset",
        "dvr.ts",
        "two DVR/IPTV recordings joined with `cat`: the second part's clock restarts at 0",
        _ts_concat_reset,
    ),
    Case(
        "ts-concat-clock-jump",
        "joined.ts",
        "recordings of one channel made an hour apart, joined: the clock jumps 1 h forward",
        _ts_concat_jump,
    ),
    Case(
        "ts-signal-dropout",
        "dropout.ts",
        "a broadcast capture that lost the signal for 2 s (a short forward gap)",
        _ts_dropout,
    ),
    Case(
        "ts-pts-wrap",
        "wrap.ts",
        "a capture started 26.5 h into the broadcaster's clock: the 33-bit PTS wraps mid-file",
        _ts_pts_wrap,
    ),
    Case(
        "fragmented-mp4",
        "fragmented.mp4",
        "fragmented MP4 (empty moov + moof fragments): Safari MediaRecorder, OBS, DASH",
        _fragmented_mp4,
    ),
    Case(
        "mp4-edit-list-trim",
        "trimmed.mp4",
        "a clip trimmed without re-encoding (phone gallery, QuickTime): an edit list starts "
        "the track 1.3 s into its media, on a non-keyframe",
        _edit_list_trim,
    ),
    Case(
        "mp4-audio-delay-edit-list",
        "delayed-audio.mp4",
        "a camera file whose sound starts 0.5 s late (an empty edit in the audio track)",
        _audio_delay_edit_list,
    ),
    Case(
        "interlaced-mpeg2-pal-broadcast",
        "dvb.ts",
        "a DVB-T recording: MPEG-2 576i25, 16:9 anamorphic, MP2 sound, MPEG-TS",
        _mpeg2_interlaced_pal,
    ),
    Case(
        "interlaced-h264-sd",
        "iptv.ts",
        "an SD IPTV recording: interlaced H.264 576i (top field first) 4:3, AC-3 sound",
        _h264_interlaced_sd,
    ),
    Case(
        "dvd-vob",
        "VTS_01_1.VOB",
        "a VOB copied from a DVD: MPEG-2 in MPEG-PS, anamorphic 4:3, AC-3",
        _dvd_vob,
    ),
    Case(
        "dv-anamorphic-avi",
        "camcorder.avi",
        "a MiniDV camcorder capture: DV NTSC 480i 4:1:1, 16:9 anamorphic, PCM, in AVI",
        _dv_anamorphic,
    ),
    Case(
        "mkv-multi-audio-subtitles",
        "movie.mkv",
        "a movie rip: H.264, three audio tracks (AAC stereo, AC-3 5.1, Opus mono), SRT",
        _mkv_multi_audio,
    ),
    Case(
        "mp4-two-audio-tracks",
        "dub.mp4",
        "an MP4 with two audio tracks (original + dub)",
        _mp4_two_audio_tracks,
    ),
    Case(
        "phone-hevc-rotated",
        "IMG_0001.MOV",
        "an iPhone video: HEVC (hvc1) in MOV, portrait through a 90° display matrix, mono AAC",
        _phone_hevc_rotated,
    ),
    Case(
        "phone-hevc-10bit-hlg",
        "IMG_0002.MOV",
        "an iPhone HDR video: HEVC Main 10, BT.2020 HLG",
        _phone_hevc_hdr,
    ),
    Case(
        "phone-h264-vfr-rotated",
        "VID_20240101.mp4",
        "an Android video under load: variable frame rate (20-60 ms between frames), 270°",
        _phone_h264_vfr_rotated,
    ),
    Case(
        "screen-recording-vfr",
        "screen.mkv",
        "an OBS/ShareX screen recording: 4:4:4, frames only when the screen changes "
        "(bursts at 60 fps, 1.2 s pauses), no audio",
        _screen_recording_vfr,
    ),
    Case(
        "webm-mediarecorder",
        "recording.webm",
        "a browser MediaRecorder file: VP8 + Opus WebM without duration or cues",
        _webm_mediarecorder,
    ),
    Case("webm-vp9-opus", "download.webm", "a VP9 + Opus WebM download", _webm_vp9),
    Case(
        "mov-prores", "export.mov", "an editing export: ProRes 422 + 24-bit PCM in MOV", _mov_prores
    ),
    Case(
        "avi-xvid-mp3", "movie.avi", "an old Xvid AVI: MPEG-4 part 2 with B-frames + MP3", _avi_xvid
    ),
    Case("flv-h264-aac", "stream.flv", "an RTMP stream recording: H.264 + AAC in FLV", _flv_h264),
    Case(
        "flv-sorenson-mp3",
        "old.flv",
        "a 2008 Flash video: Sorenson Spark (FLV1) + MP3",
        _flv_sorenson,
    ),
    Case(
        "mpeg1-program-stream",
        "vcd.mpg",
        "a VCD-era .mpg: MPEG-1 video + MP2 in MPEG-PS",
        _mpeg1_ps,
    ),
    Case(
        "y4m-raw-video-only",
        "raw.y4m",
        "raw output of a video tool (YUV4MPEG2), video only, no sound",
        _y4m,
    ),
    Case(
        "ogg-theora-vorbis",
        "commons.ogv",
        "a Wikimedia Commons video: Theora + Vorbis in Ogg",
        _ogg_theora,
    ),
    Case(
        "3gp-h263",
        "feature-phone.3gp",
        "a feature-phone clip: H.263 QCIF 15 fps + 8 kHz mono AAC in 3GP",
        _3gp_h263,
    ),
    Case(
        "audio-only-mp3-cover-art",
        "song.mp3",
        "a song with its album art uploaded as a video (MP3 + attached picture)",
        _mp3_cover_art,
    ),
    Case("audio-only-wav", "voice.wav", "a voice memo: PCM WAV, no picture", _audio_only_wav),
    Case("truncated-ts", "cut.ts", "a TS recording whose upload stopped at 60%", _truncated_ts),
    Case(
        "truncated-mp4-faststart",
        "cut-faststart.mp4",
        "a faststart MP4 whose upload stopped halfway (index present, data missing)",
        _truncated_mp4_faststart,
    ),
    Case(
        "truncated-mp4-moov-at-end",
        "cut-moov.mp4",
        "a camera MP4 whose upload stopped halfway before its index (moov) was written",
        _truncated_mp4_moov_at_end,
    ),
    Case("truncated-mkv", "cut.mkv", "an MKV whose upload stopped at 55%", _truncated_mkv),
    Case(
        "corrupt-middle-mp4",
        "bitrot.mp4",
        "an MP4 with 4 KiB of garbage in the middle (bad disk, bad transfer)",
        _corrupt_middle_mp4,
    ),
    Case(
        "garbage-with-mp4-header",
        "broken.mp4",
        "a file that starts like an MP4 (ftyp box) followed by garbage",
        _garbage_with_ftyp,
    ),
    Case("random-bytes", "noise.mp4", "random bytes named .mp4", _random_bytes),
    Case("zero-length", "empty.mp4", "an upload that sent nothing (0 bytes)", _zero_length),
    Case("text-renamed-mp4", "notes.mp4", "a text file renamed .mp4", _text_renamed),
    Case(
        "html-error-page",
        "download.mp4",
        "an HTML error page saved as .mp4 (a failed download link)",
        _html_error_page,
    ),
    Case(
        "uhd-8k",
        "8k.mp4",
        "an 8K (7680x4320) camera clip: accepted, downscaled into the ladder",
        _uhd_8k,
    ),
    Case(
        "beyond-max-8k-dci",
        "8k-dci.mp4",
        "a DCI 8K (8192x4320) cinema camera clip: wider than the 7680x4320 maximum",
        _beyond_max_8k_dci,
        expect="too_large",
    ),
)

BY_NAME = {c.name: c for c in CASES}


def cache_dir() -> Path:
    return Path(
        os.environ.get("STREAMIFY_CORPUS_DIR") or Path(tempfile.gettempdir()) / "streamify-corpus"
    )


def build(case: Case, directory: Path | None = None) -> Path:
    """The case's file in the cache (built now if missing or its recipe changed)."""
    directory = directory or cache_dir()
    target = directory / f"{case.name}-{case.recipe_hash()}" / case.filename
    for stale in directory.glob(f"{case.name}-*"):  # built from an older recipe
        rest = stale.name[len(case.name) + 1 :]
        if stale != target.parent and stale.is_dir() and rest.isalnum():
            shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        partial = Path(scratch) / case.filename
        case.build(partial, Path(scratch))
        os.replace(partial, target)
    return target


def build_all(directory: Path | None = None) -> dict[str, Path]:
    return {case.name: build(case, directory) for case in CASES}


# --- the oracle: the ffmpeg CLI -------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What `ffmpeg -i INPUT -map 0:V:0` made of a file."""

    returncode: int
    frames: int  # video frames decoded
    duration: float  # seconds from the first decoded frame to the end of the last one
    stderr: str

    @property
    def plays(self) -> bool:
        return self.returncode == 0 and self.frames > 0


def first_real_video_stream(path: Path) -> int | None:
    """Index of the first video stream that is not an attached picture (cover art), by
    ffprobe. (ffmpeg 5.1's ``-map 0:V`` still selects an MP3's cover art.)"""
    ffprobe = str(Path(ffmpeg_path()).with_name("ffprobe"))
    proc = subprocess.run(
        [
            ffprobe,
            "-v",
            "quiet",
            "-of",
            "json",
            "-show_entries",
            "stream=index,codec_type:stream_disposition=attached_pic",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=FFMPEG_TIMEOUT,
    )
    if proc.returncode != 0:
        return None
    for stream in json.loads(proc.stdout or "{}").get("streams", []):
        if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get(
            "attached_pic"
        ):
            return int(stream["index"])
    return None


def reference(path: Path) -> Reference:
    """``ffmpeg -v error -i INPUT -map 0:<first real video stream> -f framecrc -``: every
    decoded frame (after ffmpeg's own timestamp fixes: clock jumps, edit lists), with its pts
    and duration in the output time base. No real video stream: ``-map 0:V:0?``, which fails
    with "Output file #0 does not contain any stream" or decodes the cover art only, which
    does not count."""
    index = first_real_video_stream(path)
    selector = f"0:{index}" if index is not None else "0:V:0?"
    cmd = [
        ffmpeg_path(),
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        selector,
        "-an",
        "-sn",
        "-dn",
        "-f",
        "framecrc",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT)
    if index is None:
        return Reference(proc.returncode or 1, 0, 0.0, proc.stderr.strip() or "no video stream")
    time_base = Fraction(1)
    video = False
    first = end = None
    frames = 0
    for line in proc.stdout.splitlines():
        if line.startswith("#tb 0:"):
            time_base = Fraction(line.split(":", 1)[1].strip())
        elif line.startswith("#media_type 0:"):
            video = line.split(":", 1)[1].strip() == "video"
        elif line and not line.startswith("#") and video:
            fields = [f.strip() for f in line.split(",")]
            pts, duration = int(fields[2]), int(fields[3])
            frames += 1
            first = pts if first is None else min(first, pts)
            end = pts + duration if end is None else max(end, pts + duration)
    seconds = float((end - first) * time_base) if frames else 0.0
    return Reference(proc.returncode, frames, seconds, proc.stderr.strip())
