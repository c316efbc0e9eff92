// How an attachment is named on screen (pure; tested).

/** "812 B", "1.4 KB", "2.0 MB" (powers of 1024, one decimal). */
export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** "Photo", "Audio", "Video" for the server's `kind`; the content type otherwise. */
export function kindText(kind: string, contentType: string): string {
  switch (kind) {
    case "image":
      return "Photo";
    case "audio":
      return "Audio";
    case "video":
      return "Video";
    default:
      return contentType;
  }
}

/** Whole per cent of an upload, 0 for an empty total. */
export function percent(sent: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
}
