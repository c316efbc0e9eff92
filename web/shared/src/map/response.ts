// What a response map draws (pure; tested): the person, the responder and
// the line between them (a straight line: no road routing is configured).
import type { Feature, FeatureCollection, LineString, Point as GeoPoint } from "geojson";

import type { Point } from "../live/position";

export type Role = "person" | "responder";

function spot(point: Point, role: Role): Feature<GeoPoint> {
  return { type: "Feature", properties: { role }, geometry: { type: "Point", coordinates: [point.longitude, point.latitude] } };
}

export function responseFeatures(person: Point | null, responder: Point | null): FeatureCollection<GeoPoint | LineString> {
  const features: Feature<GeoPoint | LineString>[] = [];
  if (person && responder) {
    features.push({
      type: "Feature",
      properties: { role: "route" },
      geometry: {
        type: "LineString",
        coordinates: [
          [responder.longitude, responder.latitude],
          [person.longitude, person.latitude],
        ],
      },
    });
  }
  if (person) features.push(spot(person, "person"));
  if (responder) features.push(spot(responder, "responder"));
  return { type: "FeatureCollection", features };
}

/** [[west, south], [east, north]] around the points, or null for none. */
export function boundsOf(points: readonly Point[]): [[number, number], [number, number]] | null {
  if (points.length === 0) return null;
  const lons = points.map((p) => p.longitude);
  const lats = points.map((p) => p.latitude);
  return [
    [Math.min(...lons), Math.min(...lats)],
    [Math.max(...lons), Math.max(...lats)],
  ];
}
