// Uploads not finished yet, kept in IndexedDB with the file's bytes and (once
// created) the tus upload URL, so a reload or a restart resumes them from the
// server's offset instead of starting again. A record goes when the server has
// the whole file or refused it for good.
import { idb } from "@panic-alert/shared/store/idb";

const DB = "panic-alert-uploads";
const STORE = "uploads";

export interface PendingUpload {
  key: string;
  alertId: string;
  name: string;
  blob: Blob;
  /** The tus upload's URL once created; null before. */
  url: string | null;
  createdAt: string;
}

function run<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return idb(DB, STORE, mode, work);
}

export async function keepPending(upload: PendingUpload): Promise<void> {
  await run("readwrite", (s) => s.put(upload, upload.key));
}

export async function setPendingUrl(key: string, url: string): Promise<void> {
  const found = (await run("readonly", (s) => s.get(key))) as PendingUpload | undefined;
  if (found) await keepPending({ ...found, url });
}

export async function forgetPending(key: string): Promise<void> {
  await run("readwrite", (s) => s.delete(key));
}

/** The alert's unfinished uploads, oldest first. */
export async function pendingFor(alertId: string): Promise<PendingUpload[]> {
  const all = (await run("readonly", (s) => s.getAll())) as PendingUpload[];
  return all.filter((u) => u.alertId === alertId).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
