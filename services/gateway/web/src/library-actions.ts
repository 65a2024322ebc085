// The owner's actions on one library card: edit the title and visibility (UpdateVideo with an
// update mask and the etag the page read), retry a FAILED transcode (RetryTranscodeJob) and
// delete (DeleteVideo with the etag, after a confirm()). Every API error reaches the user in
// words; a stale etag (ABORTED) re-reads the video so the library shows what changed.
import { Code, ConnectError } from "@connectrpc/connect";
import { type Api, describe, requestId } from "./api.js";
import { type Video, VideoStatus, Visibility } from "./gen/streamify/v1/video_pb.js";

export interface ActionEvents {
  /** The server has another version of the video: saved, or re-read after ABORTED. */
  changed(v: Video, before: Video): void;
  deleted(name: string): void;
  /** RetryTranscodeJob was accepted: the video is being transcoded again. */
  retried(name: string): void;
  /** Something a person should read; "" clears the previous message. */
  say(text: string): void;
}

export interface Actions {
  readonly element: HTMLElement;
  /** A newer version of the video (from the live status): its etag is the one sent next. */
  update(v: Video): void;
}

const VISIBILITIES: Array<[Visibility, string]> = [
  [Visibility.PRIVATE, "Private (only you)"],
  [Visibility.UNLISTED, "Unlisted (anyone with the link)"],
  [Visibility.PUBLIC, "Public (listed)"],
];

const visibilityOf = (v: Video) => v.visibility || Visibility.PRIVATE;
const titleOf = (v: Video) => v.title || v.name;
let forms = 0;

function button(text: string, action: string, type: "button" | "submit" = "button"): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = type;
  b.textContent = text;
  b.dataset.action = action;
  return b;
}

/** `<label for>` + its control: the label is the control's accessible name (and only it). */
function labelled(text: string, control: HTMLInputElement | HTMLSelectElement, id: string): HTMLElement[] {
  const label = document.createElement("label");
  label.htmlFor = control.id = id;
  label.textContent = text;
  return [label, control];
}

export function videoActions(api: Api, initial: Video, on: ActionEvents): Actions {
  let video = initial;
  const box = document.createElement("div");
  box.className = "actions";
  const edit = button("Edit", "edit");
  const retry = button("Retry", "retry");
  const remove = button("Delete", "delete");

  const form = document.createElement("form");
  form.className = "edit";
  form.id = `edit-${++forms}`;
  form.hidden = true;
  const title = document.createElement("input");
  title.name = title.dataset.field = "title";
  title.required = true;
  title.maxLength = 200;
  title.autocomplete = "off";
  const visibility = document.createElement("select");
  visibility.name = visibility.dataset.field = "visibility";
  for (const [value, text] of VISIBILITIES) visibility.add(new Option(text, String(value)));
  const cancel = button("Cancel", "cancel");
  form.append(
    ...labelled("Title", title, `${form.id}-title`),
    ...labelled("Visibility", visibility, `${form.id}-visibility`),
    button("Save", "save", "submit"),
    cancel,
  );
  edit.setAttribute("aria-controls", form.id);
  box.append(edit, retry, remove, form);

  const render = () => {
    const t = titleOf(video);
    edit.setAttribute("aria-label", `Edit “${t}”`);
    edit.setAttribute("aria-expanded", String(!form.hidden));
    retry.setAttribute("aria-label", `Retry transcoding “${t}”`);
    remove.setAttribute("aria-label", `Delete “${t}”`);
    retry.hidden = video.status !== VideoStatus.FAILED;
  };
  const change = (v: Video) => {
    const before = video;
    video = v;
    render();
    on.changed(v, before);
  };

  /** Runs one API call with the card's buttons disabled (no double submits). */
  const busy = async (work: () => Promise<void>) => {
    const buttons = box.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await work();
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  };

  /** Shows the error; on ABORTED (our etag is stale) re-reads the video first. */
  const failed = async (err: unknown, what: string, again: string) => {
    const text = `${what} “${titleOf(video)}”: ${describe(err)}`;
    if (ConnectError.from(err).code !== Code.Aborted) return on.say(text);
    try {
      // A replica may answer from a cache for a moment: read until the etag moved on.
      let fresh = await api.metadata.getVideo({ name: video.name });
      for (let i = 0; i < 8 && fresh.etag === video.etag; i++) {
        await new Promise((r) => setTimeout(r, 250));
        fresh = await api.metadata.getVideo({ name: video.name });
      }
      change(fresh);
      on.say(`${text}\nIt was changed elsewhere after this page read it. The library now shows it as it is: check it, then ${again} again.`);
    } catch (reread) {
      on.say(`${text}\nReading it again failed too: ${describe(reread)}`);
    }
  };

  // What the form showed when it opened: only the fields the user changed go in the mask.
  let shown = { title: "", visibility: Visibility.PRIVATE };
  const close = () => {
    form.hidden = true;
    render();
  };
  edit.addEventListener("click", () => {
    if (!form.hidden) return close();
    shown = { title: video.title, visibility: visibilityOf(video) };
    title.value = shown.title;
    visibility.value = String(shown.visibility);
    form.hidden = false;
    render();
    title.focus();
  });
  cancel.addEventListener("click", close);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = { title: title.value.trim(), visibility: Number(visibility.value) as Visibility };
    const paths = (["title", "visibility"] as const).filter((f) => wanted[f] !== shown[f]);
    if (paths.length === 0) return close();
    void busy(async () => {
      try {
        const saved = await api.metadata.updateVideo({
          video: { name: video.name, etag: video.etag, ...wanted },
          updateMask: { paths: [...paths] },
          requestId: requestId(),
        });
        on.say("");
        close();
        change(saved);
      } catch (err) {
        await failed(err, "Could not save", "press Save");
      }
    });
  });

  retry.addEventListener("click", () => {
    void busy(async () => {
      try {
        await api.transcode.retryTranscodeJob({
          name: video.name.replace(/^videos\//, "transcodeJobs/"),
          requestId: requestId(),
        });
        on.say("");
        on.retried(video.name);
      } catch (err) {
        on.say(`Could not retry “${titleOf(video)}”: ${describe(err)}`);
      }
    });
  });

  remove.addEventListener("click", () => {
    if (!confirm(`Delete “${titleOf(video)}”? This cannot be undone.`)) return;
    void busy(async () => {
      try {
        await api.metadata.deleteVideo({ name: video.name, etag: video.etag, requestId: requestId() });
        on.say("");
        on.deleted(video.name);
      } catch (err) {
        await failed(err, "Could not delete", "press Delete");
      }
    });
  });

  render();
  return {
    element: box,
    update(v: Video) {
      video = v;
      render();
    },
  };
}
