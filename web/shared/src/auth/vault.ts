// Where an app keeps its refresh token across restarts: IndexedDB, encrypted
// with an AES-GCM key that is itself stored there non-extractable, so the
// token's bytes are never at rest in the clear and no script can export the
// key (one on the page can still use it: the session is the page's). The
// console keeps nothing (tokens in memory only); the phone apps keep this.
import { idb } from "../store/idb";

const DB = "panic-alert";
const STORE = "session";

function run<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return idb(DB, STORE, mode, work);
}

async function key(): Promise<CryptoKey> {
  const found = (await run("readonly", (s) => s.get("key"))) as CryptoKey | undefined;
  if (found) return found;
  const made = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await run("readwrite", (s) => s.put(made, "key"));
  return made;
}

interface Sealed {
  iv: Uint8Array<ArrayBuffer>;
  data: ArrayBuffer;
}

export async function keepRefreshToken(app: string, token: string): Promise<void> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await key(), new TextEncoder().encode(token));
  const sealed: Sealed = { iv, data };
  await run("readwrite", (s) => s.put(sealed, `refresh:${app}`));
}

export async function readRefreshToken(app: string): Promise<string | null> {
  try {
    const sealed = (await run("readonly", (s) => s.get(`refresh:${app}`))) as Sealed | undefined;
    if (!sealed) return null;
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.iv }, await key(), sealed.data);
    return new TextDecoder().decode(plain);
  } catch {
    return null;
  }
}

export async function forgetRefreshToken(app: string): Promise<void> {
  await run("readwrite", (s) => s.delete(`refresh:${app}`));
  await run("readwrite", (s) => s.delete(`refresh:${app}:account`));
}

/** The signed-in account, kept (sealed) with the refresh token for an offline start. */
export async function keepAccount(app: string, account: unknown): Promise<void> {
  await keepRefreshToken(`${app}:account`, JSON.stringify(account));
}

export async function readAccount(app: string): Promise<unknown> {
  const text = await readRefreshToken(`${app}:account`);
  return text === null ? null : (JSON.parse(text) as unknown);
}
