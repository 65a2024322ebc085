// hls.js player with quality buttons. hls.js is forced wherever MSE works, even where the
// browser says it "maybe" plays HLS natively (Chromium does), so every browser takes one path.
import Hls, { type Level } from "hls.js";

declare global {
  interface Window {
    streamify?: { hls: Hls | null; video: HTMLVideoElement; src: string | null };
  }
}

export interface Player {
  load(src: string, poster: string): void;
  readonly src: string | null;
  destroy(): void;
}

function levelLabel(level: Level): string {
  if (level.height) return `${level.height}p`;
  return `${Math.round(level.bitrate / 1000)} kbit/s`;
}

/** `box` holds the video and its controls; it is hidden until there is something to play. */
export function createPlayer(video: HTMLVideoElement, qualities: HTMLElement, info: HTMLElement, box: HTMLElement): Player {
  let hls: Hls | null = null;
  let src: string | null = null;

  const expose = () => {
    window.streamify = { hls, video, src };
  };

  const renderQualities = () => {
    qualities.replaceChildren();
    if (!hls || hls.levels.length === 0) return;
    const current = hls.autoLevelEnabled ? -1 : hls.manualLevel;
    const button = (label: string, level: number) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.level = String(level);
      b.setAttribute("aria-pressed", String(current === level));
      b.addEventListener("click", () => {
        if (!hls) return;
        // currentLevel switches now (flushes the buffer ahead); -1 returns to automatic choice.
        hls.currentLevel = level;
        renderQualities();
        showLevel();
      });
      qualities.append(b);
    };
    button("Auto", -1);
    hls.levels
      .map((level, index) => ({ level, index }))
      .sort((a, b) => b.level.height - a.level.height || b.level.bitrate - a.level.bitrate)
      .forEach(({ level, index }) => button(levelLabel(level), index));
  };

  const showLevel = () => {
    if (!hls || hls.currentLevel < 0) return;
    const level = hls.levels[hls.currentLevel];
    if (level) info.textContent = `Playing ${levelLabel(level)}${hls.autoLevelEnabled ? " (auto)" : ""}`;
  };

  const tryPlay = async () => {
    try {
      await video.play();
    } catch (err) {
      // Autoplay with sound is blocked until the user interacts: start muted instead.
      if (err instanceof DOMException && err.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        await video.play().catch(() => undefined);
      }
    }
  };

  const destroy = () => {
    hls?.destroy();
    hls = null;
    src = null;
    video.removeAttribute("src");
    qualities.replaceChildren();
    info.textContent = "";
    box.hidden = true;
    expose();
  };

  expose();
  return {
    get src() {
      return src;
    },
    destroy,
    load(url: string, poster: string) {
      if (url === src) return;
      destroy();
      src = url;
      box.hidden = false;
      if (poster) video.poster = poster;
      else video.removeAttribute("poster");
      if (Hls.isSupported()) {
        // startPosition 0: while the video is PROCESSING its playlists are EVENT playlists that
        // grow; watch from the start rather than from the "live" edge. Nothing else: a private
        // video's grant is in the playback URL's path, which every relative URI inherits.
        hls = new Hls({ startPosition: 0 });
        hls.on(Hls.Events.MANIFEST_PARSED, () => {
          renderQualities();
          void tryPlay();
        });
        hls.on(Hls.Events.LEVEL_SWITCHED, () => {
          showLevel();
          renderQualities();
        });
        hls.on(Hls.Events.ERROR, (_e, data) => {
          if (!data.fatal || !hls) return;
          if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
          else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
          else info.textContent = `Playback failed: ${data.details}`;
        });
        hls.loadSource(url);
        hls.attachMedia(video);
      } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = url; // Safari on iOS without MSE: native HLS
        void tryPlay();
      } else {
        info.textContent = "This browser cannot play HLS video.";
      }
      expose();
    },
  };
}
