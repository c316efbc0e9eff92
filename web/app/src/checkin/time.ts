// The check-in's times in plain words (pure; tested).

/**
 * The next moment the clock shows `hhmm` ("22:30") after `now`, in the phone's
 * own time zone: today if that is still ahead, else tomorrow. null when
 * `hhmm` is not a time.
 */
export function nextAt(hhmm: string, now: Date): Date | null {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (!match) return null;
  const at = new Date(now);
  at.setHours(Number(match[1]), Number(match[2]), 0, 0);
  if (at.getTime() <= now.getTime()) at.setDate(at.getDate() + 1);
  return at;
}

/** "1 h 05 min", "4 min 09 s", "9 s"; "0 s" once due (never negative). */
export function countdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (h > 0) return `${h} h ${two(m)} min`;
  if (m > 0) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

/** The clock time of `at` in the phone's locale, e.g. "22:30". */
export function clock(at: Date, locale?: string): string {
  return at.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** The "HH:MM" a time input starts with: `minutes` from now, to the next 5 minutes. */
export function suggestedTime(now: Date, minutes = 60): string {
  const at = new Date(now.getTime() + minutes * 60_000);
  at.setMinutes(Math.ceil(at.getMinutes() / 5) * 5, 0, 0);
  return `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`;
}
