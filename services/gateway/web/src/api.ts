// The grpc-web client: where the API is, who we are, and errors a person understands.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { MetadataService } from "./gen/streamify/v1/metadata_service_pb.js";
import { TranscodeService } from "./gen/streamify/v1/transcode_service_pb.js";
import { UploadService } from "./gen/streamify/v1/upload_service_pb.js";

const TOKEN_KEY = "streamify.token";

export const EXPIRED_MESSAGE =
  "Your session token expired — get a new one with ./streamify token --user <you>";
export const MISSING_MESSAGE =
  "No session token — open the link `./streamify run` prints, or get one with ./streamify token --user <you> and open this page with #token=<token>";

/** The API base URL: this page's own origin (the gateway serves both), or `?api=http://host:port`. */
export function apiBaseUrl(loc: Location = window.location): string {
  const override = new URLSearchParams(loc.search).get("api");
  return (override || loc.origin).replace(/\/+$/, "");
}

/** Takes `#token=...` out of the address bar into localStorage; returns the token to use. */
export function takeToken(loc: Location = window.location): string | null {
  const fragment = new URLSearchParams(loc.hash.replace(/^#/, ""));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", loc.pathname + loc.search + (rest ? `#${rest}` : ""));
  }
  return localStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
  localStorage.removeItem(TOKEN_KEY);
}

export interface Api {
  baseUrl: string;
  uploads: Client<typeof UploadService>;
  metadata: Client<typeof MetadataService>;
  transcode: Client<typeof TranscodeService>;
}

export function createApi(baseUrl: string, token: () => string | null, onUnauthenticated: () => void): Api {
  const auth: Interceptor = (next) => async (req) => {
    const t = token();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    try {
      return await next(req);
    } catch (err) {
      if (ConnectError.from(err).code === Code.Unauthenticated) onUnauthenticated();
      throw err;
    }
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [auth] });
  return {
    baseUrl,
    uploads: createClient(UploadService, transport),
    metadata: createClient(MetadataService, transport),
    transcode: createClient(TranscodeService, transport),
  };
}

export interface Violation {
  field: string;
  description: string;
}

export interface Problem {
  code: Code | null;
  /** google.rpc.ErrorInfo reason, e.g. FILE_TOO_LARGE, TOKEN_EXPIRED ("" when absent). */
  reason: string;
  message: string;
  /** google.rpc.BadRequest field violations from the grpc-status-details-bin trailer. */
  violations: Violation[];
}

/** What went wrong, from a ConnectError's status, ErrorInfo and BadRequest details. */
export function problemOf(err: unknown): Problem {
  if (err instanceof Error && err.name === "AbortError") {
    return { code: Code.Canceled, reason: "", message: "Cancelled.", violations: [] };
  }
  if (!(err instanceof ConnectError)) {
    const message = err instanceof Error ? err.message : String(err);
    return { code: null, reason: "", message, violations: [] };
  }
  const reason = err.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
  const violations = err
    .findDetails(BadRequestSchema)
    .flatMap((b) => b.fieldViolations)
    .map((v) => ({ field: v.field, description: v.description }));
  if (err.code === Code.Unauthenticated) {
    return { code: err.code, reason, message: EXPIRED_MESSAGE, violations: [] };
  }
  let message = err.rawMessage || Code[err.code];
  if (err.code === Code.Unavailable) {
    message = `The Streamify API is not reachable right now (${message}). Try again in a moment.`;
  }
  return { code: err.code, reason, message, violations };
}

const FIELD_LABELS: Record<string, string> = {
  size_bytes: "File size",
  content_type: "File type",
  file_name: "File name",
  title: "Title",
};

/** Text for a person: one line per field violation when the server named fields, else its message. */
export function describe(err: unknown): string {
  const p = problemOf(err);
  if (p.violations.length === 0) return p.message;
  return p.violations.map((v) => `${FIELD_LABELS[v.field] ?? v.field}: ${v.description}`).join("\n");
}

/** A random idempotency key (crypto.randomUUID needs a secure context; this does not). */
export function requestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
