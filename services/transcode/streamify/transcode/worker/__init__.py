"""The transcode worker (its own program, `streamify worker`): one stream to the orchestrator and
one killable child process per task, which runs the media package."""
