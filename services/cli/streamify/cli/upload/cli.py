"""The `streamify upload` command: `run_cli(args)`, the argparse namespace in, the exit code out;
where it uploads to and with which token, the messages it prints, the --json summary and the exit
code of each outcome."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamify.cli.upload.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    TranscodeFailed,
    UploadError,
    UsageError,
)
from streamify.cli.upload.source import inspect_file
from streamify.cli.upload.transport import Uploader, UploadResult, watch_video
from streamify.core import names
from streamify.core.humanize import human_bytes, human_duration
from streamify.v1.video_pb2 import Visibility

__all__ = ["run_cli"]

# --visibility: the CLI's words for the API's enum
VISIBILITIES: dict[str, Visibility.ValueType] = {
    "private": Visibility.VISIBILITY_PRIVATE,
    "unlisted": Visibility.VISIBILITY_UNLISTED,
    "public": Visibility.VISIBILITY_PUBLIC,
}

DEFAULT_UPLOAD_TARGET = (
    "127.0.0.1:8080"  # the gateway of `streamify run`, which routes every service
)
DEFAULT_SUBJECT = "alice"


def default_subject(env: Mapping[str, str] | None = None) -> str:
    """The user a dev token is minted for: $USER made into a valid id, else "alice"."""
    env = os.environ if env is None else env
    user = re.sub(r"[^a-z0-9_.-]", "", (env.get("USER") or env.get("LOGNAME") or "").lower())
    user = user.lstrip("_.-")[:63]
    return user if names.is_subject(user) else DEFAULT_SUBJECT


def resolve_token(given: str | None, env: Mapping[str, str] | None = None) -> str:
    """--token, else $STREAMIFY_TOKEN, else a token minted like `streamify token` does: with
    the `users` key of STREAMIFY_SIGNING_KEYS if set, otherwise the embedded dev keys in the
    data dir."""
    env = os.environ if env is None else env
    if given:
        return given
    if env.get("STREAMIFY_TOKEN"):
        return env["STREAMIFY_TOKEN"]
    from streamify.core.auth import mint_token
    from streamify.core.config import Settings
    from streamify.core.errors import ConfigurationError
    from streamify.core.token_keys import USERS, signing_key

    try:
        settings = Settings(embedded=True)
        return mint_token(
            signing_key(settings, USERS),
            default_subject(env),
            ttl_seconds=24 * 3600,
            issuer=settings.jwt_issuer,
        )
    except ConfigurationError as exc:
        raise UsageError(f"no token: give --token or set STREAMIFY_TOKEN ({exc})") from None


def run_cli(args: Any) -> int:
    """`streamify upload`: argparse namespace in, exit code out."""
    out, err = sys.stdout, sys.stderr
    quiet = bool(getattr(args, "quiet", False))
    as_json = bool(getattr(args, "json", False))

    def say(text: str) -> None:
        if not quiet:
            print(text, file=err, flush=True)

    def fail(error: UploadError, result: UploadResult | None = None) -> int:
        print(f"streamify upload: {error}", file=err, flush=True)
        if as_json:
            payload = result.to_json() if result else {}
            payload.update(error=str(error), exit_code=error.exit_code)
            print(json.dumps(payload), file=out, flush=True)
        return error.exit_code

    upload_target = (
        args.server or os.environ.get("STREAMIFY_UPLOAD_TARGET") or DEFAULT_UPLOAD_TARGET
    )
    metadata_target = (
        args.metadata_server or os.environ.get("STREAMIFY_METADATA_TARGET") or upload_target
    )
    rate = os.environ.get("STREAMIFY_UPLOAD_RATE_LIMIT", "")
    result: UploadResult | None = None
    try:
        if args.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        inspect_file(Path(args.file))  # bad input is exit 2 before any token or server is involved
        if not rate.isdigit() and rate:
            raise UsageError(f"STREAMIFY_UPLOAD_RATE_LIMIT must be bytes per second, not {rate!r}")
        token = resolve_token(args.token)
        with Uploader(
            upload_target,
            token,
            parallel=args.parallel,
            quiet=quiet,
            say=say,
            rate_limit=int(rate) if rate else None,
        ) as uploader:
            result = uploader.upload(
                args.file,
                title=args.title or "",
                description=args.description or "",
                visibility=VISIBILITIES[args.visibility],
            )
        if not result.already_completed:
            took = (
                f"{result.seconds:.1f}s" if result.seconds < 60 else human_duration(result.seconds)
            )
            say(f"uploaded {Path(args.file).name} ({human_bytes(result.size_bytes)}) in {took}")
        if not as_json:
            print(f"video: {result.video}\nupload: {result.upload}", file=out, flush=True)
        if args.wait:
            try:
                video = watch_video(metadata_target, token, result.video, say=say)
            except TranscodeFailed as failed:
                result.video_status, result.failure_reason = "FAILED", failed.video.failure_reason
                if not as_json:
                    print(
                        f"status: FAILED\nreason: {failed.video.failure_reason}",
                        file=out,
                        flush=True,
                    )
                return fail(failed, result)
            result.video_status, result.playback_url = "READY", video.playback_url
            if not as_json:
                print(f"status: READY\nplayback: {video.playback_url}", file=out, flush=True)
        if as_json:
            print(json.dumps(result.to_json()), file=out, flush=True)
        return EXIT_OK
    except UploadError as error:
        return fail(error, result)
    except KeyboardInterrupt:
        print(
            "\nstreamify upload: interrupted; run the same command again to resume",
            file=err,
            flush=True,
        )
        return EXIT_INTERRUPTED
