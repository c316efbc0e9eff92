// Pure parts of the analytics page: the p50/p90 series of one milestone out
// of the response-time rows, their scaling into an SVG path, seconds as
// people read them, and the request window from the date inputs.
import type { AlertType, ResponseTimeItem } from "@panic-alert/shared/api/types";

export type Milestone = "offer" | "accept" | "on_scene" | "resolve";
export type TypeChoice = AlertType | "all";

export const MILESTONES: readonly { key: Milestone; label: string }[] = [
  { key: "offer", label: "offer" },
  { key: "accept", label: "accept" },
  { key: "on_scene", label: "on scene" },
  { key: "resolve", label: "resolve" },
];

export const ALERT_TYPES: readonly AlertType[] = ["panic", "medical", "fire", "security", "other"];

export interface Point {
  /** bucket_start, epoch milliseconds */
  t: number;
  p50: number | null;
  p90: number | null;
  /** alerts of the row that reached the milestone */
  count: number;
}

/** One milestone's points for one row kind (`all`, or a type), oldest first. */
export function seriesOf(items: readonly ResponseTimeItem[], type: TypeChoice, milestone: Milestone): Point[] {
  return items
    .filter((item) => item.alert_type === type)
    .map((item) => {
      const stage = item[milestone];
      return { t: Date.parse(item.bucket_start), p50: stage.p50_s, p90: stage.p90_s, count: stage.count };
    })
    .sort((a, b) => a.t - b.t);
}

/** A round upper bound for the y axis (1, 2 or 5 times a power of ten; 60 s steps past a minute). */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const steps = [1, 2, 5, 10];
  const unit = value >= 120 ? 60 : 1;
  const scaled = value / unit;
  const power = 10 ** Math.floor(Math.log10(scaled));
  for (const step of steps) {
    if (step * power >= scaled) return step * power * unit;
  }
  return 10 * power * unit;
}

export interface Frame {
  width: number;
  height: number;
  /** room for axis labels: left, right, top, bottom */
  pad: { left: number; right: number; top: number; bottom: number };
  /** x domain, epoch ms */
  t0: number;
  t1: number;
  /** y domain is [0, yMax] seconds */
  yMax: number;
}

export function xOf(frame: Frame, t: number): number {
  const inner = frame.width - frame.pad.left - frame.pad.right;
  if (frame.t1 <= frame.t0) return frame.pad.left + inner / 2;
  return frame.pad.left + ((t - frame.t0) / (frame.t1 - frame.t0)) * inner;
}

export function yOf(frame: Frame, seconds: number): number {
  const inner = frame.height - frame.pad.top - frame.pad.bottom;
  return frame.pad.top + inner - (Math.min(seconds, frame.yMax) / frame.yMax) * inner;
}

const fixed = (n: number) => String(Math.round(n * 10) / 10);

/**
 * An SVG path through the points' `key` values: a gap where a value is
 * missing (no alert reached the milestone), so a line never bridges a bucket
 * without data. A lone point is drawn by its marker, not the path.
 */
export function pathOf(points: readonly Point[], key: "p50" | "p90", frame: Frame): string {
  const parts: string[] = [];
  let drawing = false;
  for (const point of points) {
    const value = point[key];
    if (value === null) {
      drawing = false;
      continue;
    }
    parts.push(`${drawing ? "L" : "M"}${fixed(xOf(frame, point.t))},${fixed(yOf(frame, value))}`);
    drawing = true;
  }
  return parts.join(" ");
}

/** The frame fitting these points: time from first to last bucket, seconds from 0 to a round maximum. */
export function frameFor(points: readonly Point[], width: number, height: number, pad: Frame["pad"]): Frame {
  const times = points.map((p) => p.t);
  const values = points.flatMap((p) => [p.p50, p.p90]).filter((v): v is number => v !== null);
  return {
    width,
    height,
    pad,
    t0: times.length ? Math.min(...times) : 0,
    t1: times.length ? Math.max(...times) : 0,
    yMax: niceMax(values.length ? Math.max(...values) : 0),
  };
}

/** Seconds as read aloud and in tables: "42 s", "3 min 05 s", "5 min", "2 h 04 min", "1 d 3 h"; "–" when unknown. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "–";
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  if (total < 3600) {
    const m = Math.floor(total / 60);
    const s = total % 60;
    return s === 0 ? `${m} min` : `${m} min ${String(s).padStart(2, "0")} s`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 24 * 60) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m === 0 ? `${h} h` : `${h} h ${String(m).padStart(2, "0")} min`;
  }
  const hours = Math.round(seconds / 3600);
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A bucket's start as its label: the date for days and weeks, date and hour (UTC) for hours. */
export function formatBucket(iso: string | number, bucket: "hour" | "day" | "week"): string {
  const date = new Date(iso);
  const day = date.toISOString().slice(0, 10);
  if (bucket === "hour") return `${day} ${date.toISOString().slice(11, 16)} UTC`;
  return bucket === "week" ? `week of ${day}` : day;
}

const range = (values: number[]) => (values.length ? [Math.min(...values), Math.max(...values)] : null);

/**
 * What a chart's role="img" says: the milestone, the rows, how many buckets,
 * and the p50/p90 ranges and latest values. Worded without "from", "to" or
 * "alert type", so the form's labels stay the only ones with those words.
 */
export function describe(points: readonly Point[], milestone: string, typeLabel: string, bucket: "hour" | "day" | "week"): string {
  const subject = `Seconds until ${milestone}, ${typeLabel}, by ${bucket}`;
  const known = points.filter((p) => p.p50 !== null || p.p90 !== null);
  if (known.length === 0) return `${subject}: no alert reached ${milestone} in this period.`;
  const first = known[0] as Point;
  const last = known[known.length - 1] as Point;
  const p50 = range(known.flatMap((p) => (p.p50 === null ? [] : [p.p50])));
  const p90 = range(known.flatMap((p) => (p.p90 === null ? [] : [p.p90])));
  const span =
    known.length === 1
      ? `1 ${bucket} (${formatBucket(first.t, bucket)})`
      : `${known.length} ${bucket}s, ${formatBucket(first.t, bucket)} through ${formatBucket(last.t, bucket)}`;
  const part = (name: string, r: number[] | null, latest: number | null) =>
    r
      ? `${name} ${r[0] === r[1] ? formatSeconds(r[0] ?? null) : `between ${formatSeconds(r[0] ?? null)} and ${formatSeconds(r[1] ?? null)}`}, latest ${formatSeconds(latest)}`
      : `${name} unknown`;
  return `${subject}: ${span}; ${part("median", p50, last.p50)}; ${part("90th percentile", p90, last.p90)}.`;
}

/** "YYYY-MM-DD" of a Date in UTC. */
export const isoDay = (date: Date) => date.toISOString().slice(0, 10);

/** The date inputs' defaults: the last 30 days, today included (UTC). */
export function defaultWindow(now: Date): { from: string; to: string } {
  const to = isoDay(now);
  const from = isoDay(new Date(now.getTime() - 29 * 86_400_000));
  return { from, to };
}

/** The request's `from` and `to` (RFC 3339, UTC) for an inclusive range of days: `to` is the next midnight. */
export function windowQuery(fromDay: string, toDay: string): { from: string; to: string } {
  const next = new Date(`${toDay}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return { from: `${fromDay}T00:00:00Z`, to: next.toISOString().replace(".000Z", "Z") };
}

/** The file name a Content-Disposition header gives, else the fallback. */
export function fileNameOf(disposition: string | null, fallback: string): string {
  const match = disposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition) : null;
  return match?.[1] ? decodeURIComponent(match[1]) : fallback;
}
