// "Attach photo, audio or video" on an open alert: each file goes up by tus
// (tus.ts) in 1 MiB chunks, resuming after a network loss, and — because the
// file and its upload URL are kept in IndexedDB (pending.ts) — after a reload
// too. Below, the alert's attachments as the server lists them.
import "../extras.css";

import { ApiError, api } from "@panic-alert/shared/api/client";
import { type ChangeEvent, useCallback, useEffect, useId, useRef, useState } from "react";

import type { Media, MediaList } from "../schemas";
import { kindText, percent, sizeText } from "./describe";
import { type PendingUpload, forgetPending, keepPending, pendingFor, setPendingUrl } from "./pending";
import { TusError, upload } from "./tus";

/** What Attachments needs of the session: the bearer token and one refresh. */
export interface Bearer {
  accessToken(): string | null;
  refresh(): Promise<boolean>;
}

interface Sending {
  key: string;
  name: string;
  sent: number;
  total: number;
  state: "sending" | "stopped";
  error: string | null;
  /** Whether "Try again" can resume it (its bytes are still kept). */
  retry: boolean;
}

/** The alert's files (a deleted one is not shown). */
async function mediaOf(alertId: string): Promise<Media[]> {
  return (await api.get<MediaList>(`/media/alert/${alertId}`)).items.filter((m) => !m.deleted_at);
}

function Progress({ item, onRetry }: { item: Sending; onRetry: () => void }) {
  const nameId = useId();
  return (
    <li className="upload">
      <span id={nameId}>{item.name}</span>
      <progress aria-label="Upload progress" aria-describedby={nameId} max={Math.max(1, item.total)} value={item.sent}>
        {percent(item.sent, item.total)} %
      </progress>
      <span className="detail">
        {item.state === "sending" ? `${percent(item.sent, item.total)} % of ${sizeText(item.total)}` : "Stopped"}
      </span>
      {item.error && (
        <span role="alert" className="error">
          {item.error}
        </span>
      )}
      {item.state === "stopped" && item.retry && (
        <button type="button" className="link" onClick={onRetry}>
          Try again
        </button>
      )}
    </li>
  );
}

export function Attachments({ alertId, session }: { alertId: string; session: Bearer }) {
  const [media, setMedia] = useState<Media[] | null>(null);
  const [sending, setSending] = useState<Sending[]>([]);
  const [said, setSaid] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const running = useRef(new Map<string, AbortController>());

  const list = useCallback(async (): Promise<Media[]> => {
    const found = await mediaOf(alertId);
    setMedia(found);
    return found;
  }, [alertId]);

  const patch = useCallback((key: string, change: Partial<Sending>) => {
    setSending((all) => all.map((s) => (s.key === key ? { ...s, ...change } : s)));
  }, []);

  const send = useCallback(
    (pending: PendingUpload) => {
      if (running.current.has(pending.key)) return;
      const stop = new AbortController();
      running.current.set(pending.key, stop);
      setSending((all) => [
        ...all.filter((s) => s.key !== pending.key),
        { key: pending.key, name: pending.name, sent: 0, total: pending.blob.size, state: "sending", error: null, retry: true },
      ]);
      upload({
        file: pending.blob,
        alertId,
        filename: pending.name,
        url: pending.url,
        signal: stop.signal,
        auth: { token: () => session.accessToken(), refresh: () => session.refresh() },
        keeper: { keep: (url) => setPendingUrl(pending.key, url), forget: () => forgetPending(pending.key) },
        listed: async (id) => (await list()).some((m) => m.id === id),
        onProgress: (sent, total) => patch(pending.key, { sent, total }),
      })
        .then(async () => {
          if (running.current.get(pending.key) === stop) running.current.delete(pending.key);
          setSending((all) => all.filter((s) => s.key !== pending.key));
          setSaid(`${pending.name} uploaded.`);
          await list().catch(() => undefined);
        })
        .catch((caught: unknown) => {
          if (stop.signal.aborted) return; // unmounted: a newer run may own the key now
          running.current.delete(pending.key);
          const fatal = caught instanceof TusError && caught.status !== null;
          patch(pending.key, {
            state: "stopped",
            retry: !fatal,
            error: caught instanceof Error ? caught.message : "The upload stopped.",
          });
        });
    },
    [alertId, list, patch, session],
  );

  // The alert's files, and whatever a reload left half sent: resume it.
  useEffect(() => {
    const controllers = running.current;
    mediaOf(alertId)
      .then(setMedia)
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught.message : "Attachments could not be loaded."));
    pendingFor(alertId)
      .then((kept) => kept.forEach(send))
      .catch(() => undefined);
    const resume = () =>
      void pendingFor(alertId)
        .then((kept) => kept.forEach(send))
        .catch(() => undefined);
    window.addEventListener("online", resume);
    return () => {
      window.removeEventListener("online", resume);
      for (const stop of controllers.values()) stop.abort();
      controllers.clear();
    };
  }, [alertId, list, send]);

  async function chosen(event: ChangeEvent<HTMLInputElement>) {
    const input = event.currentTarget;
    const files = [...(input.files ?? [])];
    input.value = "";
    setSaid(null);
    for (const file of files) {
      const pending: PendingUpload = {
        key: crypto.randomUUID(),
        alertId,
        name: file.name || "attachment",
        blob: file,
        url: null,
        createdAt: new Date().toISOString(),
      };
      try {
        await keepPending(pending);
      } catch {
        // No IndexedDB (a private window): it still goes up, only a reload loses it.
      }
      send(pending);
    }
  }

  function retry(key: string) {
    void pendingFor(alertId).then((kept) => {
      const found = kept.find((p) => p.key === key);
      if (found) send(found);
      else patch(key, { retry: false, error: "This file is no longer kept: attach it again." });
    });
  }

  return (
    <section className="extra attachments" aria-labelledby="attachments-heading">
      <h2 id="attachments-heading">Photos, audio and video</h2>
      <p className="detail">Only you, your responder and the dispatchers see them.</p>
      <div className="pickers">
        <label className="picker">
          Attach photo, audio or video
          <input type="file" accept="image/*,audio/*,video/*" capture="environment" multiple onChange={(e) => void chosen(e)} />
        </label>
        <label className="picker secondary">
          Choose a saved file
          <input type="file" accept="image/*,audio/*,video/*" multiple onChange={(e) => void chosen(e)} />
        </label>
      </div>
      {sending.length > 0 && (
        <ul className="uploads" aria-label="Uploads">
          {sending.map((item) => (
            <Progress key={item.key} item={item} onRetry={() => retry(item.key)} />
          ))}
        </ul>
      )}
      <p role="status" className="detail">
        {said}
      </p>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {media && media.length === 0 && <p className="detail">Nothing attached yet.</p>}
      {media && media.length > 0 && (
        <ul className="media" aria-label="Attached files">
          {media.map((m) => (
            <li key={m.id}>
              {kindText(m.kind, m.content_type)} · {sizeText(m.size)} ·{" "}
              {new Date(m.created_at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
