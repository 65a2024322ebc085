// Live status of one video over the grpc-web server stream WatchVideo (no polling). The stream
// ends by itself at READY or FAILED; if the connection drops earlier we subscribe again.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "./api.js";
import { type Video, VideoStatus } from "./gen/streamify/v1/video_pb.js";

export function statusName(status: VideoStatus): string {
  return (VideoStatus[status] ?? "UNSPECIFIED").replace(/^VIDEO_STATUS_/, "");
}

export function isTerminal(v: Video): boolean {
  return v.status === VideoStatus.READY || v.status === VideoStatus.FAILED;
}

/** "PROCESSING 3/8 (encoding)", "FAILED: reason", "READY", ... */
export function statusText(v: Video): string {
  const name = statusName(v.status);
  if (v.status === VideoStatus.FAILED) return `FAILED: ${v.failureReason || "no reason given"}`;
  if (v.status === VideoStatus.PROCESSING && v.progress) {
    const { completedTasks, totalTasks, stage } = v.progress;
    const counts = totalTasks > 0 ? ` ${completedTasks}/${totalTasks}` : "";
    return `${name}${counts}${stage ? ` (${stage})` : ""}`;
  }
  return name;
}

/** Calls `onVideo` with every state of the video until it is terminal or `signal` aborts. */
export async function watchVideo(
  api: Api,
  name: string,
  onVideo: (v: Video) => void,
  onError: (err: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    try {
      for await (const msg of api.metadata.watchVideo({ name }, { signal })) {
        delay = 500;
        if (!msg.video) continue;
        onVideo(msg.video);
        if (isTerminal(msg.video)) return;
      }
      // The server closed the stream before a terminal state (a restart, a proxy timeout):
      // subscribe again; the first message is the state at that moment.
    } catch (err) {
      if (signal.aborted) return;
      const code = ConnectError.from(err).code;
      if (code !== Code.Unavailable && code !== Code.Unknown && code !== Code.DeadlineExceeded && code !== Code.Internal) {
        onError(err); // NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED...: retrying won't help
        return;
      }
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}
