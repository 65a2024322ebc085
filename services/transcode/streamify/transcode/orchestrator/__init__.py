"""The transcode orchestrator (one program, `streamify serve transcode`): the durable DAG per video,
its store, the TranscodeService job API and the stream every worker keeps open."""
