"""Media work of the transcode workers, on plain dataclasses and local paths/URLs.

Probe a source, plan the ladder and the chunk grid, encode one chunk of video into every
rung from a single decode, encode the whole audio track, extract a poster and write HLS
playlists. The gRPC worker and the orchestrator call these functions; nothing here knows
about protobufs, storage or the network beyond reading a source URL.

Import the modules, not this package: it re-exports nothing, so that the orchestrator can use
the pure modules without loading PyAV (an orchestrator image has no PyAV installed).

* Pure, no PyAV: `errors`, `models`, `grid`, `ladder` (the plan), `playlists` (HLS text).
* PyAV: `probe`, `source`, `timeline`, `rotation`, `hls_output`, `video_chunk`, `audio`,
  `poster`, and `pipeline` (the whole transcode in one process, for benchmarks and tests).
"""
