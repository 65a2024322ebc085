"""The Transcode service: the orchestrator and the worker, two programs over one media package
(orchestrator/ -> media/ pure parts; worker/ -> media/)."""
