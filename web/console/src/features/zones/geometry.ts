// Pure geometry for the zones page: circles as polygons, typed coordinates,
// GeoJSON import features turned into zone bodies, and which form field a
// server validation error names. No React, no map, no I/O.
import type { MultiPolygon, Polygon } from "geojson";

import type { ZoneIn, ZoneKind } from "@panic-alert/shared/api/types";

export type { Position } from "../../shared/map/zones";
export { circlePolygon, destination, zoneFeatures, zoneShape, type ZoneProps } from "../../shared/map/zones";
import type { Position } from "../../shared/map/zones";

export type ZoneGeometry = ZoneIn["geometry"];

export const KINDS: readonly ZoneKind[] = ["safe", "danger", "service_area"];
export const KIND_LABEL: Record<ZoneKind, string> = { safe: "Safe", danger: "Danger", service_area: "Service area" };

const same = (a: Position, b: Position) => a[0] === b[0] && a[1] === b[1];

/** Vertices (open or already closed) as a closed Polygon ring; null with fewer than 3 distinct ones. */
export function closeRing(vertices: readonly Position[]): Polygon | null {
  const open = [...vertices];
  const first = open[0];
  const last = open[open.length - 1];
  if (first && last && open.length > 1 && same(first, last)) open.pop();
  if (open.length < 3) return null;
  const start = open[0] as Position;
  return { type: "Polygon", coordinates: [[...open, [start[0], start[1]]]] };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** One "lon,lat" (comma, semicolon or spaces between); a message naming the line otherwise. */
export function parsePosition(text: string, line = 1): Parsed<Position> {
  const parts = text.trim().split(/[\s,;]+/).filter(Boolean);
  const numbers = parts.map(Number);
  const [lon, lat] = numbers;
  if (parts.length !== 2 || lon === undefined || lat === undefined || !Number.isFinite(lon) || !Number.isFinite(lat)) {
    return { ok: false, error: `line ${line}: expected "longitude,latitude", got "${text.trim()}"` };
  }
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90) {
    return { ok: false, error: `line ${line}: longitude must be within ±180 and latitude within ±90` };
  }
  return { ok: true, value: [lon, lat] };
}

/** "lon,lat" per line (blank lines skipped) into positions. */
export function parseCoordinates(text: string): Parsed<Position[]> {
  const positions: Position[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? "";
    if (!line.trim()) continue;
    const parsed = parsePosition(line, i + 1);
    if (!parsed.ok) return parsed;
    positions.push(parsed.value);
  }
  return { ok: true, value: positions };
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Positions as the textarea shows them: "lon,lat" per line, to 6 decimals (~0.1 m). */
export function formatCoordinates(positions: readonly Position[]): string {
  return positions.map(([lon, lat]) => `${round(lon)},${round(lat)}`).join("\n");
}

/** [[west, south], [east, north]] of a geometry's positions, or null when it has none. */
export function boundsOf(geometries: readonly (Polygon | MultiPolygon)[]): [Position, Position] | null {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  for (const g of geometries) {
    const rings = g.type === "Polygon" ? g.coordinates : g.coordinates.flat();
    for (const ring of rings) {
      for (const [lon, lat] of ring as Position[]) {
        w = Math.min(w, lon);
        e = Math.max(e, lon);
        s = Math.min(s, lat);
        n = Math.max(n, lat);
      }
    }
  }
  return Number.isFinite(w) ? [[w, s], [e, n]] : null;
}

/** The form field a server validation error belongs to. */
export type Field = "name" | "kind" | "geometry" | "radius_m" | "active" | "rules" | "form";

/**
 * `errors[].loc` (e.g. `["body", "geometry", "Polygon", "coordinates", 0]`) to
 * the field it names: the first member after "body" that is a field of the
 * form; anything else (the body as a whole) goes to the summary only.
 */
export function fieldOfLoc(loc: readonly (string | number)[]): Field {
  const path = loc[0] === "body" ? loc.slice(1) : loc;
  const head = path[0];
  switch (head) {
    case "name":
    case "kind":
    case "geometry":
    case "radius_m":
    case "active":
    case "rules":
      return head;
    default:
      return "form";
  }
}

function isPosition(value: unknown): value is Position {
  return (
    Array.isArray(value) &&
    value.length >= 2 &&
    typeof value[0] === "number" &&
    typeof value[1] === "number" &&
    Number.isFinite(value[0]) &&
    Number.isFinite(value[1])
  );
}

const isRing = (value: unknown): value is Position[] => Array.isArray(value) && value.every(isPosition);
const isRings = (value: unknown): value is Position[][] => Array.isArray(value) && value.every(isRing);
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const twoD = (p: Position): Position => [p[0], p[1]];

/** A GeoJSON geometry a zone may have (altitudes dropped), or why not. */
export function zoneGeometryOf(value: unknown): Parsed<ZoneGeometry> {
  if (!isRecord(value)) return { ok: false, error: "the feature has no geometry" };
  const { type, coordinates } = value;
  if (type === "Point" && isPosition(coordinates)) return { ok: true, value: { type, coordinates: twoD(coordinates) } };
  if (type === "Polygon" && isRings(coordinates)) {
    return { ok: true, value: { type, coordinates: coordinates.map((r) => r.map(twoD)) } };
  }
  if (type === "MultiPolygon" && Array.isArray(coordinates) && coordinates.every(isRings)) {
    return { ok: true, value: { type, coordinates: coordinates.map((p) => p.map((r) => r.map(twoD))) } };
  }
  if (type === "Point" || type === "Polygon" || type === "MultiPolygon") {
    return { ok: false, error: `malformed ${type} coordinates` };
  }
  return { ok: false, error: `a ${typeof type === "string" ? type : "geometry"} cannot be a zone (Polygon, MultiPolygon or Point)` };
}

const isKind = (value: unknown): value is ZoneKind => typeof value === "string" && (KINDS as string[]).includes(value);

/**
 * One imported GeoJSON Feature as a zone body: `properties.name` (or the
 * feature's `id`), `kind` (else `defaultKind`), `radius_m` (for a Point),
 * `active` (true unless false), and the rules `agent_ids`, `notify_subject`,
 * `notify_admins`, `end_check_in` when given. Anything the server checks better (a Point
 * without radius, a self-intersecting ring) is left for the server to refuse.
 */
export function featureToZone(feature: unknown, defaultKind: ZoneKind): Parsed<ZoneIn> {
  if (!isRecord(feature) || feature.type !== "Feature") return { ok: false, error: "not a GeoJSON Feature" };
  const props = isRecord(feature.properties) ? feature.properties : {};
  const id = feature.id;
  const name =
    typeof props.name === "string" ? props.name : typeof id === "string" || typeof id === "number" ? String(id) : "";
  if (!name.trim()) return { ok: false, error: "the feature has no name (properties.name)" };
  let kind = defaultKind;
  if (props.kind !== undefined && props.kind !== null) {
    if (!isKind(props.kind)) return { ok: false, error: `unknown kind ${JSON.stringify(props.kind)} (safe, danger or service_area)` };
    kind = props.kind;
  }
  const geometry = zoneGeometryOf(feature.geometry);
  if (!geometry.ok) return geometry;
  const body: ZoneIn = { name, kind, geometry: geometry.value, active: props.active !== false };
  if (props.radius_m !== undefined && props.radius_m !== null) {
    const radius = Number(props.radius_m);
    if (!Number.isFinite(radius)) return { ok: false, error: "radius_m is not a number" };
    body.radius_m = radius;
  }
  const rules: NonNullable<ZoneIn["rules"]> = { notify_subject: false, notify_admins: false, end_check_in: false };
  let ruled = false;
  for (const flag of ["notify_subject", "notify_admins", "end_check_in"] as const) {
    if (typeof props[flag] === "boolean") {
      rules[flag] = props[flag];
      ruled = true;
    }
  }
  if (Array.isArray(props.agent_ids)) {
    rules.agent_ids = props.agent_ids.filter((x): x is string => typeof x === "string");
    ruled = true;
  }
  if (ruled) body.rules = rules;
  return { ok: true, value: body };
}

/** The features of an imported file: a FeatureCollection, or a lone Feature. */
export function featuresOf(json: unknown): Parsed<unknown[]> {
  if (isRecord(json) && json.type === "FeatureCollection" && Array.isArray(json.features)) {
    return { ok: true, value: json.features as unknown[] };
  }
  if (isRecord(json) && json.type === "Feature") return { ok: true, value: [json] };
  return { ok: false, error: "the file is not a GeoJSON FeatureCollection" };
}
