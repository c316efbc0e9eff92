// A small tus 1.0 client (core + creation) for evidence sent over a bad mobile
// connection: `POST /media/uploads` creates the upload (Upload-Length, and
// Upload-Metadata carrying alert_id), then PATCHes of CHUNK_BYTES each send
// the bytes from the server's Upload-Offset. After a network loss, a 5xx/429
// or a 409 the client asks HEAD for the true offset and goes on from there:
// the server keeps what arrived of a cut chunk, so nothing is sent twice and
// nothing is skipped. The upload's URL is kept (UploadStore) from creation
// until the file is complete, so a reload resumes instead of starting again.
// gateway/routes/media_tus.py is the server side.

export const TUS_VERSION = "1.0.0";
export const CHUNK_BYTES = 1024 * 1024;
/** Transient failures in a row before giving up (the user may retry). */
export const MAX_ATTEMPTS = 8;

/** base64 of the UTF-8 bytes of `text` (tus metadata values). */
export function base64Utf8(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** `Upload-Metadata`: `key base64(value)` pairs, comma-separated, in the given order. */
export function metadataHeader(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${base64Utf8(value)}`)
    .join(",");
}

/** The headers of the creation request. */
export function creationHeaders(length: number, metadata: Readonly<Record<string, string>>): Record<string, string> {
  return { "Tus-Resumable": TUS_VERSION, "Upload-Length": String(length), "Upload-Metadata": metadataHeader(metadata) };
}

/** The headers of a PATCH sending bytes from `offset`. */
export function patchHeaders(offset: number): Record<string, string> {
  return { "Tus-Resumable": TUS_VERSION, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
}

/** The byte range [start, end) of the chunk sent from `offset`. */
export function chunkRange(offset: number, size: number, chunkBytes: number = CHUNK_BYTES): [number, number] {
  return [offset, Math.min(size, offset + chunkBytes)];
}

/** A header's non-negative integer (Upload-Offset), or null when missing or malformed. */
export function headerCount(headers: Headers, name: string): number | null {
  const value = headers.get(name)?.trim();
  return value && /^\d{1,16}$/.test(value) ? Number(value) : null;
}

/** Wait before transient retry `attempt` (1-based): 0.5 s doubling to 8 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(8000, 500 * 2 ** Math.max(0, attempt - 1));
}

/** The last path segment of an upload URL: the upload's id (and the media's, once complete). */
export function uploadIdOf(url: string): string {
  return url.split("?")[0]?.split("/").filter(Boolean).pop() ?? url;
}

export interface Auth {
  token(): string | null;
  /** One refresh; false when the session is over. */
  refresh(): Promise<boolean>;
}

/** Where an upload's URL is kept between creation and completion (IndexedDB in the app). */
export interface UrlKeeper {
  keep(url: string): Promise<void>;
  forget(): Promise<void>;
}

export class TusError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export interface UploadOptions {
  file: Blob;
  alertId: string;
  filename: string;
  auth: Auth;
  keeper: UrlKeeper;
  /** The upload's URL from an earlier run (a reload): resumed from its HEAD offset. */
  url?: string | null;
  /** Whether the alert already lists media `id` (a completed upload whose answer was lost). */
  listed?: (mediaId: string) => Promise<boolean>;
  onProgress?: (sent: number, total: number) => void;
  chunkBytes?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

/** Problem details' `detail`, when the answer has one. */
async function detailOf(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as { detail?: unknown; title?: unknown };
    if (typeof problem.detail === "string") return problem.detail;
    if (typeof problem.title === "string") return problem.title;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${response.status}`;
}

function transient(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * Send `file` to the alert by tus; resolves with the media id once the server
 * has the whole file. Throws TusError when the server refuses it for good (413,
 * 415, 404 on the alert…) or after MAX_ATTEMPTS transient failures in a row;
 * the kept URL stays then, so a later run resumes. An abort (signal) rejects
 * with the signal's reason and also keeps the URL.
 */
export async function upload(options: UploadOptions): Promise<string> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const { file, auth, keeper, signal } = options;
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const size = file.size;

  async function send(method: string, url: string, headers: Record<string, string>, body?: Blob): Promise<Response> {
    signal?.throwIfAborted();
    const go = () => {
      const token = auth.token();
      const all = token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
      return doFetch(url, { method, headers: all, body: body ?? null, credentials: "omit", cache: "no-store", signal: signal ?? null });
    };
    let response = await go();
    if (response.status === 401 && (await auth.refresh())) response = await go();
    if (response.status === 401) throw new TusError("Your session has ended: sign in again.", 401);
    return response;
  }

  async function create(): Promise<string> {
    const metadata = { alert_id: options.alertId, filename: options.filename };
    const response = await send("POST", "/media/uploads", creationHeaders(size, metadata));
    if (response.status !== 201) throw new TusError(await detailOf(response), response.status);
    const location = response.headers.get("Location");
    if (!location) throw new TusError("The server gave no upload address.", response.status);
    await keeper.keep(location);
    return location;
  }

  /** The server's offset of `url`; null when the upload is gone (404/410). */
  async function head(url: string): Promise<number | null> {
    const response = await send("HEAD", url, { "Tus-Resumable": TUS_VERSION });
    if (response.status === 404 || response.status === 410) return null;
    if (!response.ok) throw new TusError(`HTTP ${response.status}`, response.status);
    const offset = headerCount(response.headers, "Upload-Offset");
    if (offset === null) throw new TusError("The server gave no Upload-Offset.", response.status);
    return offset;
  }

  /** Done when the upload behind `url` already became the alert's media. */
  async function completedAs(url: string): Promise<string | null> {
    const id = uploadIdOf(url);
    return options.listed && (await options.listed(id)) ? id : null;
  }

  let url = options.url ?? null;
  let offset = 0;
  if (url) {
    const known = await head(url).catch((caught: unknown) => {
      if (caught instanceof TusError && caught.status !== null && !transient(caught.status)) throw caught;
      return 0; // unreachable now: the PATCH loop below asks again
    });
    if (known === null) {
      const done = await completedAs(url);
      if (done) {
        await keeper.forget();
        options.onProgress?.(size, size);
        return done;
      }
      url = null;
    } else offset = known;
  }
  url ??= await create();
  options.onProgress?.(offset, size);

  let failures = 0;
  for (;;) {
    let reason: string;
    try {
      const [start, end] = chunkRange(offset, size, chunkBytes);
      const response = await send("PATCH", url, patchHeaders(start), file.slice(start, end));
      if (response.status === 204) {
        failures = 0;
        offset = headerCount(response.headers, "Upload-Offset") ?? end;
        options.onProgress?.(offset, size);
        const mediaId = response.headers.get("Media-Id");
        if (mediaId || offset >= size) {
          await keeper.forget();
          return mediaId ?? uploadIdOf(url);
        }
        continue;
      }
      if (response.status === 409) {
        // Not the server's offset (another tab, or a cut chunk): ask it.
        const known = headerCount(response.headers, "Upload-Offset") ?? (await head(url));
        if (known !== null) {
          offset = known;
          continue;
        }
      }
      if (response.status === 404 || response.status === 410 || response.status === 409) {
        // The upload is gone (expired, or it was completed and its answer lost).
        const done = await completedAs(url);
        if (done) {
          await keeper.forget();
          return done;
        }
        url = await create();
        offset = 0;
        continue;
      }
      if (!transient(response.status)) {
        await keeper.forget();
        throw new TusError(await detailOf(response), response.status);
      }
      reason = `HTTP ${response.status}`;
    } catch (caught) {
      if (caught instanceof TusError || signal?.aborted) throw caught;
      reason = caught instanceof Error ? caught.message : String(caught); // the network
    }
    failures += 1;
    if (failures >= MAX_ATTEMPTS) throw new TusError(`The upload stopped: ${reason}. It resumes when you try again.`, null);
    await sleep(retryDelayMs(failures));
    try {
      const known = await head(url);
      if (known === null) {
        const done = await completedAs(url);
        if (done) {
          await keeper.forget();
          return done;
        }
        url = await create();
        offset = 0;
      } else offset = known;
      options.onProgress?.(offset, size);
    } catch (caught) {
      if (caught instanceof TusError && caught.status !== null && !transient(caught.status)) throw caught;
      if (signal?.aborted) throw caught;
      // still no network: the next PATCH finds out again
    }
  }
}
