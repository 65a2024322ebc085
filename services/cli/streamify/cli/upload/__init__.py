"""Uploading a video file from a terminal or a script: `streamify upload FILE`.

The flow: CreateUpload (idempotent through a request id derived from the file's identity), then
either one pre-signed PUT or an S3 multipart upload (SignParts in batches of up to 100, parts
PUT in parallel, each streamed from the file), then CompleteUpload. Bytes go straight to storage;
the Upload service only signs URLs and verifies.

Resuming: a small state file per source file (absolute path + size + mtime) remembers the upload.
Running the same command again after a crash or Ctrl-C asks the service which parts storage
already holds and sends only the others. The state file is removed once the upload is complete.

Library use::

    from streamify.cli.upload.transport import Uploader, watch_video

    uploader = Uploader("127.0.0.1:50052", token)
    result = uploader.upload(Path("cat.mp4"), title="Cat")
    video = watch_video("127.0.0.1:50051", token, result.video)

Errors are :class:`UploadError` subclasses carrying the process exit code the CLI uses.

One job a module, each importing only those above it:

- `errors`: the exit codes and the errors that carry them.
- `humanize`: sizes and durations for people.
- `resume`: the resume state, one file per source file.
- `source`: the file to upload, checked before anything is contacted, and its content type.
- `progress`: what the user sees while it runs: the progress line, a video's status line.
- `transport`: talking to the Upload and Metadata services and to storage (`Uploader`,
  `watch_video`).
- `cli`: the `streamify upload` command (`run_cli`): messages, the --json summary, exit codes.
"""
