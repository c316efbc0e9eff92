import { describe as group, expect, it } from "vitest";

import type { ResponseTimeItem } from "@panic-alert/shared/api/types";
import {
  defaultWindow,
  describe,
  fileNameOf,
  formatBucket,
  formatSeconds,
  frameFor,
  niceMax,
  pathOf,
  seriesOf,
  windowQuery,
  xOf,
  yOf,
} from "./series";

const stage = (p50: number | null, p90: number | null, count = 1) => ({ count, p50_s: p50, p90_s: p90 });
const item = (day: string, type: ResponseTimeItem["alert_type"], offer: ReturnType<typeof stage>): ResponseTimeItem => ({
  bucket_start: `${day}T00:00:00Z`,
  alert_type: type,
  count: 3,
  offer,
  accept: stage(null, null, 0),
  on_scene: stage(null, null, 0),
  resolve: stage(600, 900),
});

const items = [
  item("2026-01-02", "all", stage(20, 40)),
  item("2026-01-02", "fire", stage(20, 40)),
  item("2026-01-01", "all", stage(10, 30, 2)),
  item("2026-01-04", "all", stage(null, null, 0)),
  item("2026-01-05", "all", stage(15, 25)),
];

group("seriesOf", () => {
  it("takes one row kind's milestone, oldest first", () => {
    const points = seriesOf(items, "all", "offer");
    expect(points.map((p) => p.p50)).toEqual([10, 20, null, 15]);
    expect(points[0]).toEqual({ t: Date.parse("2026-01-01T00:00:00Z"), p50: 10, p90: 30, count: 2 });
    expect(seriesOf(items, "fire", "offer")).toHaveLength(1);
    expect(seriesOf(items, "medical", "offer")).toEqual([]);
  });
});

group("scaling", () => {
  const pad = { left: 10, right: 10, top: 0, bottom: 0 };

  it("maps time across and seconds up from the bottom", () => {
    const frame = frameFor(seriesOf(items, "all", "offer"), 120, 100, pad);
    expect(frame.yMax).toBe(50);
    expect(xOf(frame, frame.t0)).toBe(10);
    expect(xOf(frame, frame.t1)).toBe(110);
    expect(yOf(frame, 0)).toBe(100);
    expect(yOf(frame, 50)).toBe(0);
    expect(yOf(frame, 500)).toBe(0); // clamped
  });

  it("breaks the line where a bucket has no value", () => {
    const points = seriesOf(items, "all", "offer");
    const frame = frameFor(points, 120, 100, pad);
    expect(pathOf(points, "p50", frame)).toBe("M10,80 L35,60 M110,70");
    expect(pathOf([], "p50", frame)).toBe("");
  });

  it("centres a lone bucket", () => {
    const points = seriesOf(items, "fire", "offer");
    const frame = frameFor(points, 120, 100, pad);
    expect(xOf(frame, points[0]?.t ?? 0)).toBe(60);
  });

  it("rounds the axis maximum", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(41)).toBe(50);
    expect(niceMax(100)).toBe(100);
    expect(niceMax(130)).toBe(300);
    expect(niceMax(4000)).toBe(6000);
  });
});

group("formatting", () => {
  it("says seconds as people read them", () => {
    expect(formatSeconds(null)).toBe("–");
    expect(formatSeconds(4.26)).toBe("4.3 s");
    expect(formatSeconds(42.4)).toBe("42 s");
    expect(formatSeconds(185)).toBe("3 min 05 s");
    expect(formatSeconds(300)).toBe("5 min");
    expect(formatSeconds(7440)).toBe("2 h 04 min");
    expect(formatSeconds(3600)).toBe("1 h");
    expect(formatSeconds(97200)).toBe("1 d 3 h");
  });

  it("labels buckets", () => {
    expect(formatBucket("2026-01-05T13:00:00Z", "hour")).toBe("2026-01-05 13:00 UTC");
    expect(formatBucket("2026-01-05T00:00:00Z", "day")).toBe("2026-01-05");
    expect(formatBucket("2026-01-05T00:00:00Z", "week")).toBe("week of 2026-01-05");
  });

  it("summarises a chart for its accessible name", () => {
    expect(describe(seriesOf(items, "all", "offer"), "offer", "all types", "day")).toBe(
      "Seconds until offer, all types, by day: 3 days, 2026-01-01 through 2026-01-05; " +
        "median between 10 s and 20 s, latest 15 s; 90th percentile between 25 s and 40 s, latest 25 s.",
    );
    expect(describe(seriesOf(items, "all", "accept"), "accept", "fire alerts", "week")).toBe(
      "Seconds until accept, fire alerts, by week: no alert reached accept in this period.",
    );
  });
});

group("the window", () => {
  it("defaults to the last 30 days and sends whole UTC days", () => {
    expect(defaultWindow(new Date("2026-03-31T15:00:00Z"))).toEqual({ from: "2026-03-02", to: "2026-03-31" });
    expect(windowQuery("2026-03-02", "2026-03-31")).toEqual({ from: "2026-03-02T00:00:00Z", to: "2026-04-01T00:00:00Z" });
  });

  it("reads the download's file name", () => {
    expect(fileNameOf('attachment; filename="response-times-a-b.csv"', "x.csv")).toBe("response-times-a-b.csv");
    expect(fileNameOf(null, "x.csv")).toBe("x.csv");
  });
});
