// An alert's media as the console and the responder app show it: each file
// read with the bearer token and shown from a blob: URL (never a URL that
// would need the token in it).
import "./ui.css";
import { useEffect, useState } from "react";

import { api, raw } from "../api/client";
import type { Media, MediaList } from "../api/types";

/** A file read with the bearer token, shown from a blob: URL (freed on unmount). */
function useBlobUrl(mediaId: string | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!mediaId) return;
    let made: string | null = null;
    let cancelled = false;
    raw("GET", `/media/${mediaId}`, { accept: "*/*" })
      .then((response) => response.blob())
      .then((blob) => {
        if (cancelled) return;
        made = URL.createObjectURL(blob);
        setUrl(made);
      })
      .catch(() => setUrl(null));
    return () => {
      cancelled = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [mediaId]);
  return url;
}

function rendition(media: Media, name: string): string | null {
  return media.renditions?.find((r) => r.rendition === name)?.id ?? null;
}

function Item({ media }: { media: Media }) {
  const [open, setOpen] = useState(false);
  const thumbnail = useBlobUrl(rendition(media, "thumbnail") ?? rendition(media, "poster"));
  const playable = rendition(media, media.kind === "audio" ? "opus" : "mp4") ?? media.id;
  const full = useBlobUrl(open ? playable : null);
  const label = `${media.kind} from the ${media.uploader_role}, ${new Date(media.created_at).toLocaleTimeString()}`;
  return (
    <li className="evidence-item">
      {thumbnail ? <img src={thumbnail} alt={`Thumbnail: ${label}`} /> : <span className="no-thumb">{media.kind}</span>}
      <span>{label}</span>
      {media.processing !== "done" && <span className="badge">{media.processing}</span>}
      <button type="button" onClick={() => setOpen(!open)} aria-expanded={open}>
        {open ? "Hide" : "Open"} {media.kind}
      </button>
      {open && full && media.kind === "video" && <video src={full} controls aria-label={label} />}
      {open && full && media.kind === "audio" && <audio src={full} controls aria-label={label} />}
      {open && full && media.kind === "image" && <img src={full} alt={label} className="evidence-full" />}
    </li>
  );
}

/** The alert's media, refreshed when `media.added` arrives (version). */
export function Evidence({ alertId, version }: { alertId: string; version: number }) {
  const [items, setItems] = useState<Media[] | null>(null);
  useEffect(() => {
    api
      .get<MediaList>(`/media/alert/${alertId}`)
      .then((answer) => setItems(answer.items))
      .catch(() => setItems([]));
  }, [alertId, version]);
  if (items === null) return <p>Loading media…</p>;
  if (items.length === 0) return <p>No media.</p>;
  return (
    <ul className="evidence" aria-label="Media">
      {items.map((m) => (
        <Item key={m.id} media={m} />
      ))}
    </ul>
  );
}
