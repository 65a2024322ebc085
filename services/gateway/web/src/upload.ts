// Resumable multipart upload straight to storage: Uppy's @uppy/aws-s3 multipart hooks, each
// mapped one to one onto an UploadService RPC. Bytes never pass through our API.
//
//   createMultipartUpload   -> CreateUpload(multipart: true)   (done in a pre-processor, see below)
//   signPart                -> SignParts (batched: one call signs the next SIGN_AHEAD parts)
//   listParts               -> ListParts (all pages)
//   completeMultipartUpload -> CompleteUpload(parts with ETags)
//   abortMultipartUpload    -> AbortUpload
//
// Part sizes are the server's choice (Upload.multipart.part_size_bytes) and every part URL is
// signed for an exact size, but Uppy cuts the file into chunks before it calls
// createMultipartUpload. So a pre-processor creates the upload first and `getChunkSize` hands
// Uppy the server's part size.
//
// Resume after a reload: the upload's name is kept in localStorage under Uppy's file id (name,
// type, size, last-modified). Picking the same file again finds it; the pre-processor checks it
// is still PENDING (GetUpload) and gives Uppy `s3Multipart {uploadId, key}`, which makes Uppy
// call listParts and send only the missing parts. (Golden Retriever would also keep the blob,
// but only up to its IndexedDB limits; re-picking the file works for any size.)
import AwsS3, { type AwsS3Part } from "@uppy/aws-s3";
import Uppy, { type UppyFile } from "@uppy/core";
import DragDrop from "@uppy/drag-drop";
import StatusBar from "@uppy/status-bar";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Api, describe, requestId } from "./api.js";
import { type Upload, type SignedPart, UploadState } from "./gen/streamify/v1/upload_service_pb.js";

type M = { name: string; type?: string; upload?: string; video?: string } & Record<string, unknown>;
type B = Record<string, never>;
type File = UppyFile<M, B>;

const STORE_KEY = "streamify.pendingUploads.v1";
const SIGN_AHEAD = 8; // parts signed per SignParts call (the API allows 100)
const URL_MARGIN_MS = 60_000; // don't hand Uppy a URL that expires within a minute
const MIN_PART = 5 * 1024 * 1024; // Uppy sends files up to this size as one part

/** What localStorage remembers about an unfinished upload, keyed by Uppy file id. */
export interface PendingUpload {
  name: string;
  video: string;
  fileName: string;
  sizeBytes: number;
  partCount: number;
  completeRequestId: string;
  savedAt: number;
}

function loadPending(): Record<string, PendingUpload> {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) ?? "{}") as Record<string, PendingUpload>;
  } catch {
    return {};
  }
}

function savePending(all: Record<string, PendingUpload>): void {
  localStorage.setItem(STORE_KEY, JSON.stringify(all));
}

function forgetPending(name: string): void {
  const all = loadPending();
  for (const [id, p] of Object.entries(all)) if (p.name === name) delete all[id];
  savePending(all);
}

export interface UploaderEvents {
  /** An upload exists (created or resumed): its video can be watched from now on. */
  started(upload: Upload, resumed: boolean): void;
  /** CompleteUpload succeeded: the video is UPLOADED and queued for transcoding. */
  completed(upload: Upload): void;
  /** Something a person should read. */
  error(text: string): void;
}

/** Mints SignParts URLs a batch at a time and hands them out one by one. */
class PartSigner {
  #pending = new Map<string, Promise<SignedPart>>();

  constructor(private readonly api: Api) {}

  async url(upload: Upload, partNumber: number, signal?: AbortSignal): Promise<SignedPart> {
    const key = `${upload.name}#${partNumber}`;
    let promise = this.#pending.get(key);
    if (!promise) {
      this.#signBatch(upload, partNumber, signal);
      promise = this.#pending.get(key)!;
    }
    // Each URL is used once: a retry of the part signs afresh.
    this.#pending.delete(key);
    const part = await promise;
    const expires = part.expireTime ? timestampDate(part.expireTime).getTime() : Infinity;
    if (expires - Date.now() < URL_MARGIN_MS) return this.url(upload, partNumber, signal);
    return part;
  }

  #signBatch(upload: Upload, first: number, signal?: AbortSignal): void {
    const count = upload.multipart?.partCount ?? 1;
    const numbers: number[] = [];
    for (let n = first; n <= count && numbers.length < SIGN_AHEAD; n++) {
      if (n === first || !this.#pending.has(`${upload.name}#${n}`)) numbers.push(n);
    }
    const call = this.api.uploads.signParts({ name: upload.name, partNumbers: numbers }, { signal });
    for (const n of numbers) {
      const key = `${upload.name}#${n}`;
      const one = call.then((r) => {
        const part = r.parts.find((p) => p.partNumber === n);
        if (!part) throw new Error(`the server did not sign part ${n}`);
        return part;
      });
      // A batch that fails or is cancelled must not poison parts another call will need.
      one.catch(() => {
        if (this.#pending.get(key) === one) this.#pending.delete(key);
      });
      this.#pending.set(key, one);
    }
  }
}

export interface Uploader {
  uppy: Uppy<M, B>;
  /** Unfinished uploads remembered from earlier visits (checked against the server). */
  unfinished(): Promise<Array<PendingUpload & { partsStored: number }>>;
  /** Abandons a remembered upload (AbortUpload) and forgets it. */
  discard(name: string): Promise<void>;
}

export function createUploader(api: Api, dropTarget: HTMLElement, statusTarget: HTMLElement, on: UploaderEvents): Uploader {
  const uploads = new Map<string, Upload>(); // by Uppy file id
  const byName = new Map<string, Upload>(); // by upload name
  const partSizes = new WeakMap<Blob, number>();
  const signer = new PartSigner(api);

  const uppy = new Uppy<M, B>({
    id: "streamify",
    autoProceed: true,
    // Uppy fills a missing MIME type from the extension; the server accepts `video/*` only.
    restrictions: { allowedFileTypes: ["video/*"] },
  });

  uppy.use(DragDrop, {
    target: dropTarget,
    note: "Video files. Large files upload in parts and can be paused, resumed or resumed after a reload.",
  });
  uppy.use(StatusBar, { target: statusTarget, showProgressDetails: true, hideUploadButton: true });

  const remember = (file: File, upload: Upload, completeRequestId = requestId()) => {
    uploads.set(file.id, upload);
    byName.set(upload.name, upload);
    if (file.data instanceof Blob) partSizes.set(file.data, Number(upload.multipart?.partSizeBytes ?? 0n));
    uppy.setFileMeta(file.id, { ...file.meta, upload: upload.name, video: upload.video });
    const all = loadPending();
    all[file.id] = {
      name: upload.name,
      video: upload.video,
      fileName: file.name ?? upload.fileName,
      sizeBytes: Number(upload.sizeBytes),
      partCount: upload.multipart?.partCount ?? 1,
      completeRequestId: all[file.id]?.completeRequestId ?? completeRequestId,
      savedAt: Date.now(),
    };
    savePending(all);
  };

  const checkPlan = (file: File, upload: Upload) => {
    const size = file.size ?? 0;
    const partSize = Number(upload.multipart?.partSizeBytes ?? 0n);
    const expected = size <= MIN_PART ? 1 : Math.ceil(size / Math.max(partSize, MIN_PART));
    if (!upload.multipart || expected !== upload.multipart.partCount) {
      throw new Error(
        `the server planned ${upload.multipart?.partCount ?? 0} parts of ${partSize} bytes, which this page cannot send`,
      );
    }
  };

  /** A remembered upload of this very file that storage still holds, or null. */
  const resumable = async (file: File): Promise<Upload | null> => {
    const saved = loadPending()[file.id];
    if (!saved || saved.sizeBytes !== file.size) return null;
    try {
      const upload = await api.uploads.getUpload({ name: saved.name });
      if (upload.state === UploadState.PENDING && upload.multipart) return upload;
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code !== Code.NotFound && code !== Code.FailedPrecondition) throw err;
    }
    forgetPending(saved.name);
    return null;
  };

  const create = async (file: File): Promise<Upload> => {
    const upload = await api.uploads.createUpload({
      fileName: file.name ?? "video",
      sizeBytes: BigInt(file.size ?? 0),
      contentType: file.type ?? "",
      title: (file.name ?? "").replace(/\.[^.]+$/, "") || "Untitled",
      multipart: true,
      requestId: requestId(),
    });
    checkPlan(file, upload);
    return upload;
  };

  // Runs before Uppy cuts the files into parts (on the first attempt and on every retry).
  uppy.addPreProcessor(async (fileIDs) => {
    for (const id of fileIDs) {
      const file = uppy.getFile(id);
      try {
        let upload = uploads.get(id) ?? null; // a retry: the upload exists
        let resumed = upload !== null;
        if (!upload) {
          upload = await resumable(file); // the same file, picked again after a reload
          resumed = upload !== null;
        }
        if (upload) {
          checkPlan(file, upload);
          remember(file, upload);
          // Tells @uppy/aws-s3 to restore: listParts, then only the missing parts.
          uppy.setFileState(id, { s3Multipart: { uploadId: upload.name, key: upload.name } } as Partial<File>);
        } else {
          upload = await create(file);
          remember(file, upload);
        }
        on.started(upload, resumed);
      } catch (err) {
        uppy.emit("upload-error", uppy.getFile(id), err as Error);
        throw err;
      }
    }
  });

  // @uppy/aws-s3 aborts the multipart upload both when the user cancels and when a part fails
  // for good. Only the first should throw the parts away: a failed upload stays resumable
  // (retry, or pick the file again after a reload). The server expires abandoned ones.
  const cancelled = new Set<string>();
  uppy.on("file-removed", (file) => cancelled.add(file.id));
  uppy.on("cancel-all", () => uppy.getFiles().forEach((f) => cancelled.add(f.id)));

  const nameOf = (file: File, uploadId?: string) => {
    const upload = (uploadId && byName.get(uploadId)) || uploads.get(file.id);
    if (!upload) throw new Error(`no upload was created for ${file.name}`);
    return upload;
  };

  uppy.use(AwsS3<M, B>, {
    shouldUseMultipart: true,
    limit: 4,
    getChunkSize: (data: { size: number }) => partSizes.get(data as Blob) || 16 * 1024 * 1024,

    createMultipartUpload: async (file: File) => {
      let upload = uploads.get(file.id);
      if (!upload) {
        upload = await create(file); // only if the pre-processor did not run (never expected)
        remember(file, upload);
        on.started(upload, false);
      }
      return { uploadId: upload.name, key: upload.name };
    },

    signPart: async (file: File, { uploadId, partNumber, body, signal }) => {
      const part = await signer.url(nameOf(file, uploadId), partNumber, signal);
      if (Number(part.sizeBytes) !== body.size) {
        throw new Error(`part ${partNumber} is ${body.size} bytes but the server expects ${part.sizeBytes}`);
      }
      return { method: "PUT" as const, url: part.url };
    },

    listParts: async (file: File, { uploadId, signal }) => {
      const name = nameOf(file, uploadId).name;
      const parts: AwsS3Part[] = [];
      let pageToken = "";
      do {
        const page = await api.uploads.listParts({ name, pageSize: 1000, pageToken }, { signal });
        for (const p of page.parts) parts.push({ PartNumber: p.partNumber, Size: Number(p.sizeBytes), ETag: p.etag });
        pageToken = page.nextPageToken;
      } while (pageToken);
      return parts;
    },

    completeMultipartUpload: async (file: File, { uploadId, parts, signal }) => {
      const upload = nameOf(file, uploadId);
      const requestKey = loadPending()[file.id]?.completeRequestId ?? requestId();
      const done = await api.uploads.completeUpload(
        {
          name: upload.name,
          parts: parts.map((p) => ({ partNumber: p.PartNumber ?? 0, etag: p.ETag ?? "" })),
          requestId: requestKey,
        },
        { signal },
      );
      forgetPending(upload.name);
      on.completed(done);
      return {};
    },

    abortMultipartUpload: async (file: File, { uploadId, signal }) => {
      const upload = nameOf(file, uploadId);
      if (!cancelled.has(file.id)) return; // a failure, not the user's wish: keep it resumable
      cancelled.delete(file.id);
      forgetPending(upload.name);
      uploads.delete(file.id);
      await api.uploads.abortUpload({ name: upload.name, requestId: requestId() }, { signal });
    },
  });

  uppy.on("upload-error", (file, error) => {
    const name = file?.name ?? "Upload";
    if (error instanceof ConnectError) {
      on.error(`${name}: ${describe(error)}`);
    } else {
      // A PUT to storage failed (network, CORS, an expired URL) after Uppy's retries.
      const hint = file && uploads.has(file.id) ? " Press retry, or pick the same file again later: the upload resumes where it stopped." : "";
      on.error(`${name}: sending the file to storage failed (${error.message}).${hint}`);
    }
  });
  uppy.on("restriction-failed", (_file, error) => on.error(error.message));

  return {
    uppy,
    async unfinished() {
      const out: Array<PendingUpload & { partsStored: number }> = [];
      for (const saved of Object.values(loadPending())) {
        try {
          const upload = await api.uploads.getUpload({ name: saved.name });
          if (upload.state !== UploadState.PENDING) {
            forgetPending(saved.name);
            continue;
          }
          const parts = await api.uploads.listParts({ name: saved.name, pageSize: 1000 });
          out.push({ ...saved, partsStored: parts.parts.length });
        } catch (err) {
          const code = ConnectError.from(err).code;
          if (code === Code.NotFound || code === Code.FailedPrecondition) forgetPending(saved.name);
          else throw err;
        }
      }
      return out;
    },
    async discard(name: string) {
      forgetPending(name);
      await api.uploads.abortUpload({ name, requestId: requestId() });
    },
  };
}
