// A panic press that could not reach the server yet: kept in IndexedDB with
// its Idempotency-Key until the server has it, so a press made offline (or
// whose answer was lost) goes out as soon as the network is back, exactly
// once (the server answers a repeated key with the same alert).
import { idb } from "@panic-alert/shared/store/idb";

const DB = "panic-alert-outbox";
const STORE = "presses";
const KEY = "pending";

export interface PendingPress {
  idempotencyKey: string;
  body: Record<string, unknown>;
  pressedAt: string;
}

function run<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return idb(DB, STORE, mode, work);
}

export async function keepPress(press: PendingPress): Promise<void> {
  await run("readwrite", (s) => s.put(press, KEY));
}

export async function pendingPress(): Promise<PendingPress | null> {
  return ((await run("readonly", (s) => s.get(KEY))) as PendingPress | undefined) ?? null;
}

export async function clearPress(): Promise<void> {
  await run("readwrite", (s) => s.delete(KEY));
}
