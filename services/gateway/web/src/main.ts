// Streamify's page: upload, live status, library (with the owner's edit/retry/delete actions),
// player. Plain DOM, no framework: small views over one API client (Uppy brings its own Preact
// for its two widgets).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Api, EXPIRED_MESSAGE, MISSING_MESSAGE, apiBaseUrl, createApi, describe, takeToken } from "./api.js";
import { type Video, VideoStatus, Visibility } from "./gen/streamify/v1/video_pb.js";
import { type Actions, type ActionEvents, videoActions } from "./library-actions.js";
import { createPlayer } from "./player.js";
import { statusName, statusText, watchVideo } from "./status.js";
import { createUploader } from "./upload.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const alertBox = $<HTMLDivElement>("alert");
function showAlert(text: string): void {
  alertBox.textContent = text;
  alertBox.hidden = false;
}
function clearAlert(): void {
  alertBox.hidden = true;
  alertBox.textContent = "";
}

function badge(v: Video): HTMLSpanElement {
  const span = document.createElement("span");
  span.className = "badge";
  span.dataset.status = statusName(v.status);
  span.textContent = statusText(v);
  return span;
}

// --- now watching ----------------------------------------------------------------------------

const player = createPlayer($<HTMLVideoElement>("video"), $("qualities"), $("level-info"), $("player"));
let watching: { name: string; stop: AbortController } | null = null;

function renderNow(v: Video): void {
  $("now").hidden = false;
  $("now-title").textContent = v.title || v.name;
  const status = $("status");
  status.textContent = statusText(v);
  status.dataset.status = statusName(v.status);
  const bar = $<HTMLProgressElement>("processing");
  const total = v.progress?.totalTasks ?? 0;
  bar.hidden = !(v.status === VideoStatus.PROCESSING && total > 0);
  bar.max = Math.max(total, 1);
  bar.value = v.progress?.completedTasks ?? 0;
  if (v.playbackUrl) player.load(v.playbackUrl, v.posterUrl);
  updateCard(v);
}

/** Watches `name` live (`again`: subscribe anew even if it is the one watched, after a retry). */
function select(api: Api, name: string, scroll = false, again = false): void {
  if (watching?.name === name && !again) return;
  watching?.stop.abort();
  player.destroy();
  const stop = new AbortController();
  watching = { name, stop };
  $("now").hidden = false;
  $("now-title").textContent = name;
  $("status").textContent = "…";
  $("status").dataset.status = "";
  if (scroll) $("now").scrollIntoView({ behavior: "smooth", block: "start" });
  void watchVideo(api, name, renderNow, (err) => showAlert(describe(err)), stop.signal);
}

// --- library ---------------------------------------------------------------------------------

const library = $<HTMLUListElement>("library");
const more = $<HTMLButtonElement>("more");
let nextPage = "";

const actions = new Map<string, Actions>(); // by video name

function cardButton(api: Api, v: Video): HTMLButtonElement {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "card";
  button.addEventListener("click", () => select(api, v.name, true));
  const img = document.createElement("img");
  img.alt = "";
  img.loading = "lazy";
  if (v.posterUrl) img.src = v.posterUrl;
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = v.title || v.name;
  const when = document.createElement("time");
  if (v.createTime) {
    const d = timestampDate(v.createTime);
    when.dateTime = d.toISOString();
    when.textContent = d.toLocaleString();
  }
  button.append(img, title, badge(v), when);
  return button;
}

const isPrivate = (v: Video) => v.visibility === Visibility.PRIVATE || v.visibility === Visibility.UNSPECIFIED;

function actionEvents(api: Api): ActionEvents {
  return {
    changed(v, before) {
      updateCard(v);
      if (watching?.name !== v.name) return;
      $("now-title").textContent = v.title || v.name;
      // Made private, its grant-less URL stops working: play the new one, with a grant. (Made
      // public, the grant in the URL playing keeps working until it expires.)
      if (isPrivate(v) && !isPrivate(before) && player.src && v.playbackUrl) player.load(v.playbackUrl, v.posterUrl);
    },
    deleted(name) {
      cardOf(name)?.remove();
      actions.delete(name);
      $("library-empty").hidden = library.children.length > 0;
      if (watching?.name !== name) return;
      watching.stop.abort();
      watching = null;
      player.destroy();
      $("now").hidden = true;
    },
    retried(name) {
      select(api, name, true, true);
    },
    say(text) {
      if (text) showAlert(text);
      else clearAlert();
    },
  };
}

function card(api: Api, v: Video): HTMLLIElement {
  const li = document.createElement("li");
  li.dataset.name = v.name;
  const a = videoActions(api, v, actionEvents(api));
  actions.set(v.name, a);
  li.append(cardButton(api, v), a.element);
  return li;
}

const cardOf = (name: string) => library.querySelector<HTMLLIElement>(`li[data-name="${CSS.escape(name)}"]`);

let cardApi: Api | null = null;
/** Shows a newer version of a video in its card (the actions' form, if open, stays as it is). */
function updateCard(v: Video): void {
  const li = cardOf(v.name);
  if (!li || !cardApi) return;
  li.querySelector(".card")?.replaceWith(cardButton(cardApi, v));
  actions.get(v.name)?.update(v);
}

async function loadLibrary(api: Api, reset: boolean): Promise<void> {
  more.disabled = true;
  try {
    const page = await api.metadata.listVideos({ pageSize: 12, pageToken: reset ? "" : nextPage });
    if (reset) {
      library.replaceChildren();
      actions.clear();
    }
    for (const v of page.videos) library.append(card(api, v));
    nextPage = page.nextPageToken;
    more.hidden = !nextPage;
    $("library-empty").hidden = library.children.length > 0;
  } catch (err) {
    showAlert(describe(err));
  } finally {
    more.disabled = false;
  }
}

// --- unfinished uploads from an earlier visit --------------------------------------------------

async function showUnfinished(uploader: ReturnType<typeof createUploader>): Promise<void> {
  const list = $<HTMLUListElement>("unfinished");
  list.replaceChildren();
  for (const u of await uploader.unfinished()) {
    const li = document.createElement("li");
    li.textContent = `“${u.fileName}” stopped with ${u.partsStored} of ${u.partCount} parts stored — pick the same file to resume it. `;
    const discard = document.createElement("button");
    discard.type = "button";
    discard.textContent = "Discard";
    discard.addEventListener("click", () => {
      uploader.discard(u.name).then(() => li.remove(), (err) => showAlert(describe(err)));
    });
    li.append(discard);
    list.append(li);
  }
}

// --- start -----------------------------------------------------------------------------------

function main(): void {
  const token = takeToken();
  $("api-base").textContent = apiBaseUrl();
  if (!token) {
    showAlert(MISSING_MESSAGE);
    return;
  }
  const api = createApi(apiBaseUrl(), () => localStorage.getItem("streamify.token"), () => showAlert(EXPIRED_MESSAGE));
  cardApi = api;
  const uploader = createUploader(api, $("drop"), $("upload-progress"), {
    started(upload) {
      clearAlert();
      select(api, upload.video, false);
      void loadLibrary(api, true);
    },
    completed() {
      void loadLibrary(api, true);
    },
    error(text) {
      showAlert(text);
    },
  });
  more.addEventListener("click", () => void loadLibrary(api, false));
  void loadLibrary(api, true);
  void showUnfinished(uploader).catch((err) => showAlert(describe(err)));
  (window as unknown as { streamifyUppy: unknown }).streamifyUppy = uploader.uppy;
  document.body.dataset.ready = "true";
}

main();
