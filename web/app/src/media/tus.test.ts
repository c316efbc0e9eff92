// @vitest-environment node
import { describe, expect, it } from "vitest";

import {
  MAX_ATTEMPTS,
  TUS_VERSION,
  TusError,
  base64Utf8,
  chunkRange,
  creationHeaders,
  headerCount,
  metadataHeader,
  patchHeaders,
  retryDelayMs,
  upload,
  uploadIdOf,
} from "./tus";

describe("headers", () => {
  it("encode metadata as key and base64 of UTF-8, comma-separated", () => {
    expect(base64Utf8("é")).toBe("w6k=");
    expect(metadataHeader({ alert_id: "a1", filename: "ö.jpg" })).toBe(`alert_id ${btoa("a1")},filename w7YuanBn`);
  });

  it("create with the length and metadata, patch from an offset as offset+octet-stream", () => {
    expect(creationHeaders(5, { alert_id: "x" })).toEqual({
      "Tus-Resumable": "1.0.0",
      "Upload-Length": "5",
      "Upload-Metadata": `alert_id ${btoa("x")}`,
    });
    expect(patchHeaders(1024)).toEqual({
      "Tus-Resumable": "1.0.0",
      "Upload-Offset": "1024",
      "Content-Type": "application/offset+octet-stream",
    });
  });

  it("read counts strictly", () => {
    expect(headerCount(new Headers({ "Upload-Offset": " 42 " }), "Upload-Offset")).toBe(42);
    expect(headerCount(new Headers({ "Upload-Offset": "-1" }), "Upload-Offset")).toBeNull();
    expect(headerCount(new Headers(), "Upload-Offset")).toBeNull();
  });

  it("cut chunks at the end of the file, back off, and name the upload", () => {
    expect(chunkRange(0, 10, 4)).toEqual([0, 4]);
    expect(chunkRange(8, 10, 4)).toEqual([8, 10]);
    expect([1, 2, 3, 5, 9].map(retryDelayMs)).toEqual([500, 1000, 2000, 8000, 8000]);
    expect(uploadIdOf("/media/uploads/abc")).toBe("abc");
  });
});

/** An in-memory tus server with the gateway's rules, and a record of what it was asked. */
class FakeServer {
  uploads = new Map<string, { length: number; bytes: number[]; metadata: string }>();
  calls: string[] = [];
  /** Make the n-th PATCH (1-based) fail: "network" after storing `keep` bytes of it, or a status. */
  faults = new Map<number, { kind: "network"; keep: number } | { kind: "status"; status: number }>();
  completed = new Set<string>();
  private patches = 0;
  private next = 1;

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? "GET";
    const headers = new Headers(init?.headers);
    this.calls.push(`${method} ${url}${headers.has("Upload-Offset") ? ` @${headers.get("Upload-Offset") ?? ""}` : ""}`);
    expect(headers.get("Tus-Resumable")).toBe(TUS_VERSION);
    expect(headers.get("Authorization")).toBe("Bearer t");
    if (method === "POST") {
      const id = `u${this.next++}`;
      this.uploads.set(id, { length: Number(headers.get("Upload-Length")), bytes: [], metadata: headers.get("Upload-Metadata") ?? "" });
      return new Response(null, { status: 201, headers: { Location: `/media/uploads/${id}` } });
    }
    const id = uploadIdOf(url);
    const found = this.uploads.get(id);
    if (!found) return new Response(null, { status: 404 });
    if (method === "HEAD") return new Response(null, { status: 200, headers: { "Upload-Offset": String(found.bytes.length) } });
    this.patches += 1;
    const fault = this.faults.get(this.patches);
    if (fault?.kind === "status") return new Response(JSON.stringify({ detail: "nope" }), { status: fault.status });
    if (Number(headers.get("Upload-Offset")) !== found.bytes.length) return new Response(null, { status: 409 });
    expect(headers.get("Content-Type")).toBe("application/offset+octet-stream");
    const body = [...new Uint8Array(await (init?.body as Blob).arrayBuffer())];
    if (fault?.kind === "network") {
      found.bytes.push(...body.slice(0, fault.keep));
      throw new TypeError("Failed to fetch");
    }
    found.bytes.push(...body);
    const extra: Record<string, string> = { "Upload-Offset": String(found.bytes.length) };
    if (found.bytes.length === found.length) {
      extra["Media-Id"] = id;
      this.uploads.delete(id);
      this.completed.add(id);
      this.completedBytes = body.length === 0 ? this.completedBytes : found.bytes;
    }
    return new Response(null, { status: 204, headers: extra });
  };
  completedBytes: number[] = [];
}

function fileOf(size: number): Blob {
  return new Blob([Uint8Array.from({ length: size }, (_, i) => i % 251)]);
}

function keeper() {
  const kept: { url: string | null; forgotten: boolean } = { url: null, forgotten: false };
  return {
    kept,
    keeper: {
      keep: (url: string) => {
        kept.url = url;
        return Promise.resolve();
      },
      forget: () => {
        kept.forgotten = true;
        return Promise.resolve();
      },
    },
  };
}

const auth = { token: () => "t", refresh: () => Promise.resolve(true) };
const noWait = () => Promise.resolve();

describe("upload", () => {
  it("creates, sends the file in chunks from each answered offset, and forgets the URL when done", async () => {
    const server = new FakeServer();
    const { kept, keeper: k } = keeper();
    const progress: number[] = [];
    const file = fileOf(10);
    const id = await upload({
      file,
      alertId: "a1",
      filename: "p.jpg",
      auth,
      keeper: k,
      chunkBytes: 4,
      fetch: server.fetch,
      sleep: noWait,
      onProgress: (sent) => progress.push(sent),
    });
    expect(id).toBe("u1");
    expect(server.calls).toEqual([
      "POST /media/uploads",
      "PATCH /media/uploads/u1 @0",
      "PATCH /media/uploads/u1 @4",
      "PATCH /media/uploads/u1 @8",
    ]);
    expect(progress).toEqual([0, 4, 8, 10]);
    expect(server.completedBytes).toEqual([...new Uint8Array(await file.arrayBuffer())]);
    expect(kept).toEqual({ url: "/media/uploads/u1", forgotten: true });
  });

  it("after a network loss mid-chunk asks HEAD and goes on from the bytes that arrived", async () => {
    const server = new FakeServer();
    server.faults.set(2, { kind: "network", keep: 1 });
    const file = fileOf(10);
    const id = await upload({ file, alertId: "a1", filename: "p", auth, keeper: keeper().keeper, chunkBytes: 4, fetch: server.fetch, sleep: noWait });
    expect(id).toBe("u1");
    expect(server.calls).toEqual([
      "POST /media/uploads",
      "PATCH /media/uploads/u1 @0",
      "PATCH /media/uploads/u1 @4",
      "HEAD /media/uploads/u1",
      "PATCH /media/uploads/u1 @5",
      "PATCH /media/uploads/u1 @9",
    ]);
    expect(server.completedBytes).toEqual([...new Uint8Array(await file.arrayBuffer())]);
  });

  it("resumes a kept URL from its HEAD offset without creating another upload", async () => {
    const server = new FakeServer();
    server.uploads.set("u7", { length: 6, bytes: [0, 1, 2], metadata: "" });
    const id = await upload({
      file: fileOf(6),
      alertId: "a1",
      filename: "p",
      auth,
      keeper: keeper().keeper,
      url: "/media/uploads/u7",
      chunkBytes: 4,
      fetch: server.fetch,
      sleep: noWait,
    });
    expect(id).toBe("u7");
    expect(server.calls).toEqual(["HEAD /media/uploads/u7", "PATCH /media/uploads/u7 @3"]);
  });

  it("a kept URL that is gone: done if the alert lists it, else a new upload", async () => {
    const server = new FakeServer();
    const base = { file: fileOf(3), alertId: "a1", filename: "p", auth, keeper: keeper().keeper, fetch: server.fetch, sleep: noWait };
    expect(await upload({ ...base, url: "/media/uploads/gone", listed: (id) => Promise.resolve(id === "gone") })).toBe("gone");
    expect(server.calls).toEqual(["HEAD /media/uploads/gone"]);
    expect(await upload({ ...base, url: "/media/uploads/old", listed: () => Promise.resolve(false) })).toBe("u1");
    expect(server.calls.slice(1)).toEqual(["HEAD /media/uploads/old", "POST /media/uploads", "PATCH /media/uploads/u1 @0"]);
  });

  it("retries a 503, and stops for good on a refusal such as 415", async () => {
    const server = new FakeServer();
    server.faults.set(1, { kind: "status", status: 503 });
    server.faults.set(3, { kind: "status", status: 415 });
    const { kept, keeper: k } = keeper();
    const sent = upload({ file: fileOf(8), alertId: "a1", filename: "p", auth, keeper: k, chunkBytes: 4, fetch: server.fetch, sleep: noWait });
    await expect(sent).rejects.toEqual(new TusError("nope", 415));
    expect(server.calls).toEqual([
      "POST /media/uploads",
      "PATCH /media/uploads/u1 @0",
      "HEAD /media/uploads/u1",
      "PATCH /media/uploads/u1 @0",
      "PATCH /media/uploads/u1 @4",
    ]);
    expect(kept.forgotten).toBe(true);
  });

  it("gives up after MAX_ATTEMPTS network failures in a row, keeping the URL", async () => {
    const server = new FakeServer();
    const { kept, keeper: k } = keeper();
    const down = (input: RequestInfo | URL, init?: RequestInit) =>
      init?.method === "POST" ? server.fetch(input, init) : Promise.reject(new TypeError("Failed to fetch"));
    const waits: number[] = [];
    const sent = upload({
      file: fileOf(8),
      alertId: "a1",
      filename: "p",
      auth,
      keeper: k,
      fetch: down,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await expect(sent).rejects.toBeInstanceOf(TusError);
    expect(waits).toHaveLength(MAX_ATTEMPTS - 1);
    expect(kept).toEqual({ url: "/media/uploads/u1", forgotten: false });
  });

  it("refreshes the token once on 401", async () => {
    const server = new FakeServer();
    let token = "old";
    const refreshing = {
      token: () => token,
      refresh: () => {
        token = "t";
        return Promise.resolve(true);
      },
    };
    const guarded = (input: RequestInfo | URL, init?: RequestInit) =>
      new Headers(init?.headers).get("Authorization") === "Bearer old" ? Promise.resolve(new Response(null, { status: 401 })) : server.fetch(input, init);
    expect(await upload({ file: fileOf(2), alertId: "a", filename: "p", auth: refreshing, keeper: keeper().keeper, fetch: guarded, sleep: noWait })).toBe("u1");
  });
});
