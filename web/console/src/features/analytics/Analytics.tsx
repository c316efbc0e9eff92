import { type SubmitEvent, useCallback, useEffect, useState } from "react";

import { ApiError, api, raw, withQuery } from "@panic-alert/shared/api/client";
import type { Bucket, ResponseTimeItem, ResponseTimes } from "@panic-alert/shared/api/types";
import {
  ALERT_TYPES,
  type Frame,
  MILESTONES,
  type Milestone,
  type Point,
  type TypeChoice,
  defaultWindow,
  describe,
  fileNameOf,
  formatBucket,
  formatSeconds,
  frameFor,
  pathOf,
  seriesOf,
  windowQuery,
  xOf,
  yOf,
} from "./series";

const PATH = "/analytics/response-times";
const WIDTH = 560;
const HEIGHT = 200;
const PAD = { left: 92, right: 16, top: 12, bottom: 28 };

interface Query {
  from: string;
  to: string;
  bucket: Bucket;
  alertType: TypeChoice;
}

const typeLabel = (t: TypeChoice) => (t === "all" ? "all types" : `${t} alerts`);

function queryOf(q: Query) {
  const window = windowQuery(q.from, q.to);
  return { from: window.from, to: window.to, bucket: q.bucket, alert_type: q.alertType === "all" ? null : q.alertType };
}

function Chart({ points, milestone, label, query }: { points: Point[]; milestone: Milestone; label: string; query: Query }) {
  const frame: Frame = frameFor(points, WIDTH, HEIGHT, PAD);
  const ticks = [0, frame.yMax / 2, frame.yMax];
  const first = points[0];
  const last = points[points.length - 1];
  const bottom = HEIGHT - PAD.bottom;
  return (
    <section className="chart">
      <h2>Time to {label}</h2>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={describe(points, label, typeLabel(query.alertType), query.bucket)}
        data-milestone={milestone}
      >
        {ticks.map((tick) => (
          <g key={tick}>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={yOf(frame, tick)} y2={yOf(frame, tick)} className="grid" />
            <text x={PAD.left - 6} y={yOf(frame, tick) + 4} textAnchor="end" className="tick">
              {formatSeconds(tick)}
            </text>
          </g>
        ))}
        <line x1={PAD.left} x2={PAD.left} y1={PAD.top} y2={bottom} className="axis" />
        {first && (
          <text x={xOf(frame, first.t)} y={HEIGHT - 8} textAnchor={points.length > 1 ? "start" : "middle"} className="tick">
            {formatBucket(first.t, query.bucket)}
          </text>
        )}
        {last && points.length > 1 && (
          <text x={xOf(frame, last.t)} y={HEIGHT - 8} textAnchor="end" className="tick">
            {formatBucket(last.t, query.bucket)}
          </text>
        )}
        <path d={pathOf(points, "p90", frame)} className="line p90" />
        <path d={pathOf(points, "p50", frame)} className="line p50" />
        {points.map((p) => (
          <g key={p.t}>
            {p.p90 !== null && <circle cx={xOf(frame, p.t)} cy={yOf(frame, p.p90)} r={3} className="dot p90" />}
            {p.p50 !== null && <circle cx={xOf(frame, p.t)} cy={yOf(frame, p.p50)} r={3} className="dot p50" />}
          </g>
        ))}
        {points.length === 0 && (
          <text x={WIDTH / 2} y={HEIGHT / 2} textAnchor="middle" className="tick">
            No alerts in this period
          </text>
        )}
      </svg>
    </section>
  );
}

function Table({ items, bucket }: { items: ResponseTimeItem[]; bucket: Bucket }) {
  return (
    <div className="table-scroll">
      <table className="response-table">
        <caption>Response times</caption>
        <thead>
          <tr>
            <th scope="col" rowSpan={2}>
              Bucket
            </th>
            <th scope="col" rowSpan={2}>
              Type
            </th>
            <th scope="col" rowSpan={2}>
              Alerts
            </th>
            {MILESTONES.map((m) => (
              <th key={m.key} scope="colgroup" colSpan={3}>
                To {m.label}
              </th>
            ))}
          </tr>
          <tr>
            {MILESTONES.map((m) => [
              <th key={`${m.key}-n`} scope="col">
                <span className="sr-only">{m.label} </span>reached
              </th>,
              <th key={`${m.key}-50`} scope="col">
                <span className="sr-only">{m.label} </span>p50
              </th>,
              <th key={`${m.key}-90`} scope="col">
                <span className="sr-only">{m.label} </span>p90
              </th>,
            ])}
          </tr>
        </thead>
        <tbody>
          {items.length === 0 && (
            <tr>
              <td colSpan={3 + 3 * MILESTONES.length} className="empty">
                No alerts were raised in this period.
              </td>
            </tr>
          )}
          {items.map((item) => (
            <tr key={`${item.bucket_start}-${item.alert_type}`} className={item.alert_type === "all" ? "all-row" : undefined}>
              <th scope="row">{formatBucket(item.bucket_start, bucket)}</th>
              <td>{item.alert_type}</td>
              <td className="num">{item.count}</td>
              {MILESTONES.map((m) => [
                <td key={`${m.key}-n`} className="num">
                  {item[m.key].count}
                </td>,
                <td key={`${m.key}-50`} className="num">
                  {formatSeconds(item[m.key].p50_s)}
                </td>,
                <td key={`${m.key}-90`} className="num">
                  {formatSeconds(item[m.key].p90_s)}
                </td>,
              ])}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function problemLines(caught: unknown): string[] {
  if (caught instanceof ApiError && caught.issues.length > 0) {
    return caught.issues.map((issue) => `${String(issue.loc[issue.loc.length - 1] ?? "")}: ${issue.msg}`);
  }
  return [caught instanceof Error ? caught.message : "The request failed."];
}

/** Response-time analytics: p50/p90 to each milestone over time, the table, and the CSV (issue 18, item 7). */
export function Analytics() {
  const [form, setForm] = useState<Query>(() => ({ ...defaultWindow(new Date()), bucket: "day", alertType: "all" }));
  const [shown, setShown] = useState<Query | null>(null);
  const [data, setData] = useState<ResponseTimes | null>(null);
  const [errors, setErrors] = useState<string[]>([]);
  const [loading, setLoading] = useState(false);
  const [exportNote, setExportNote] = useState("");

  const load = useCallback(async (q: Query) => {
    setLoading(true);
    try {
      const answer = await api.get<ResponseTimes>(PATH, queryOf(q));
      setData(answer);
      setShown(q);
      setErrors([]);
    } catch (caught) {
      setErrors(problemLines(caught));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- the first load with the default window
    void load({ ...defaultWindow(new Date()), bucket: "day", alertType: "all" });
  }, [load]);

  function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    void load(form);
  }

  async function exportCsv() {
    const q = shown ?? form;
    setExportNote("Preparing the CSV…");
    try {
      const response = await raw("GET", withQuery(PATH, { ...queryOf(q), format: "csv" }), { accept: "text/csv" });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = fileNameOf(response.headers.get("Content-Disposition"), `response-times-${q.from}-${q.to}.csv`);
      document.body.append(link);
      link.click();
      link.remove();
      // Some browsers read the URL after click() returns.
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setExportNote(`Downloaded ${link.download}.`);
    } catch (caught) {
      setExportNote("");
      setErrors(problemLines(caught));
    }
  }

  const set = (patch: Partial<Query>) => setForm((f) => ({ ...f, ...patch }));
  const items = data?.items ?? [];
  return (
    <main className="page analytics">
      <h1 tabIndex={-1}>Analytics</h1>
      <form className="analytics-form" onSubmit={submit} aria-label="Response-time period">
        <label>
          From
          <input type="date" value={form.from} max={form.to} required onChange={(e) => set({ from: e.target.value })} />
        </label>
        <label>
          To
          <input type="date" value={form.to} min={form.from} required onChange={(e) => set({ to: e.target.value })} />
        </label>
        <label>
          Bucket
          <select value={form.bucket} onChange={(e) => set({ bucket: e.target.value === "hour" ? "hour" : e.target.value === "week" ? "week" : "day" })}>
            <option value="hour">Hour</option>
            <option value="day">Day</option>
            <option value="week">Week</option>
          </select>
        </label>
        <label>
          Alert type
          <select value={form.alertType} onChange={(e) => set({ alertType: ALERT_TYPES.find((t) => t === e.target.value) ?? "all" })}>
            <option value="all">All types</option>
            {ALERT_TYPES.map((t) => (
              <option key={t} value={t}>
                {t[0]?.toUpperCase()}
                {t.slice(1)}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={loading}>
          Show
        </button>
        <button type="button" className="secondary" onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </form>
      {errors.length > 0 && (
        <div role="alert" className="error-summary">
          <p>The response times could not be shown:</p>
          <ul>
            {errors.map((e, i) => (
              <li key={i}>{e}</li>
            ))}
          </ul>
        </div>
      )}
      <p role="status" className="analytics-status">
        {loading
          ? "Loading…"
          : shown && data
            ? `${typeLabel(shown.alertType)[0]?.toUpperCase() ?? ""}${typeLabel(shown.alertType).slice(1)} from ${shown.from} to ${shown.to} by ${shown.bucket}: ${items.filter((i) => i.alert_type === "all").reduce((n, i) => n + i.count, 0)} alerts in ${new Set(items.map((i) => i.bucket_start)).size} buckets (buckets without alerts are left out). ${exportNote}`
            : exportNote}
      </p>
      {shown && data && (
        <>
          <p className="chart-legend" aria-hidden="true">
            <span className="key p50" /> median (p50) <span className="key p90" /> 90th percentile (p90)
          </p>
          <div className="charts">
            {MILESTONES.map((m) => (
              <Chart key={m.key} points={seriesOf(items, shown.alertType, m.key)} milestone={m.key} label={m.label} query={shown} />
            ))}
          </div>
          <Table items={items} bucket={shown.bucket} />
        </>
      )}
    </main>
  );
}
