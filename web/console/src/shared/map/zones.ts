// Zones on a map: their shapes (a Point zone is its circle) and the layers
// that draw them by kind. Shared by the live map and the zones page.
import type { Feature, FeatureCollection, MultiPolygon, Polygon } from "geojson";
import type { Map as MapLibreMap } from "maplibre-gl";

import { api } from "@panic-alert/shared/api/client";
import type { Zone, ZoneKind, ZonePage } from "@panic-alert/shared/api/types";

export type Position = [number, number];

const EARTH_RADIUS_M = 6_371_008.8;
const toRad = (deg: number) => (deg * Math.PI) / 180;
const toDeg = (rad: number) => (rad * 180) / Math.PI;

/** The point `distanceM` metres from `[lon, lat]` along `bearingDeg` (great circle). */
export function destination([lon, lat]: Position, distanceM: number, bearingDeg: number): Position {
  const d = distanceM / EARTH_RADIUS_M;
  const b = toRad(bearingDeg);
  const phi1 = toRad(lat);
  const lambda1 = toRad(lon);
  const phi2 = Math.asin(Math.sin(phi1) * Math.cos(d) + Math.cos(phi1) * Math.sin(d) * Math.cos(b));
  const lambda2 = lambda1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(phi1), Math.cos(d) - Math.sin(phi1) * Math.sin(phi2));
  const lon2 = ((toDeg(lambda2) + 540) % 360) - 180;
  return [lon2, toDeg(phi2)];
}

/** A circle of `radiusM` around `centre` as a closed `steps`-gon (first position repeated last). */
export function circlePolygon(centre: Position, radiusM: number, steps = 64): Polygon {
  const ring: Position[] = [];
  for (let i = 0; i < steps; i += 1) ring.push(destination(centre, radiusM, (360 * i) / steps));
  const first = ring[0];
  if (first) ring.push([first[0], first[1]]);
  return { type: "Polygon", coordinates: [ring] };
}

/** What the map draws for a zone: a Point becomes its circle. */
export function zoneShape(zone: Pick<Zone, "geometry" | "radius_m">): Polygon | MultiPolygon | null {
  const g = zone.geometry;
  if (g.type === "Point") return zone.radius_m ? circlePolygon(g.coordinates, zone.radius_m) : null;
  return g;
}

export interface ZoneProps {
  id: string;
  name: string;
  kind: ZoneKind;
  active: number;
}

export function zoneFeatures(zones: readonly Zone[]): FeatureCollection<Polygon | MultiPolygon, ZoneProps> {
  const features: Feature<Polygon | MultiPolygon, ZoneProps>[] = [];
  for (const zone of zones) {
    const geometry = zoneShape(zone);
    if (!geometry) continue;
    features.push({
      type: "Feature",
      geometry,
      properties: { id: zone.id, name: zone.name, kind: zone.kind, active: zone.active ? 1 : 0 },
    });
  }
  return { type: "FeatureCollection", features };
}

/** Kind colours (fills and outlines; no text is drawn on them). */
export const KIND_COLOURS = [
  "match",
  ["get", "kind"],
  "safe",
  "#16703f",
  "danger",
  "#b3001b",
  "service_area",
  "#1f5fbf",
  "#444444",
] as const;

/** The fill and outlines of `source`'s zones (inactive ones faint and dashed), under what comes after. */
export function addZoneLayers(map: MapLibreMap, source: string, data: FeatureCollection): void {
  map.addSource(source, { type: "geojson", data });
  map.addLayer({
    id: `${source}-fill`,
    type: "fill",
    source,
    paint: { "fill-color": KIND_COLOURS as never, "fill-opacity": ["case", ["==", ["get", "active"], 1], 0.25, 0.08] },
  });
  map.addLayer({
    id: `${source}-line`,
    type: "line",
    source,
    filter: ["==", ["get", "active"], 1],
    paint: { "line-color": KIND_COLOURS as never, "line-width": 2 },
  });
  map.addLayer({
    id: `${source}-line-inactive`,
    type: "line",
    source,
    filter: ["!=", ["get", "active"], 1],
    paint: { "line-color": KIND_COLOURS as never, "line-width": 2, "line-dasharray": [2, 2] },
  });
}

/** Every zone, page by page (at most `maxPages` of 100). */
export async function listZones(maxPages = 50): Promise<Zone[]> {
  const zones: Zone[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page += 1) {
    const result: ZonePage = await api.get<ZonePage>("/geofencing/zones", { limit: 100, cursor });
    zones.push(...result.items);
    cursor = result.next_cursor;
    if (!cursor) break;
  }
  return zones;
}
