// The world outline drawn under everything: Natural Earth's 1:110m land
// (the world-atlas package), shipped in the bundle so the map still shows
// where things are when no tile server can be reached.
import type { Feature, FeatureCollection, Geometry, MultiPolygon, Polygon, Position } from "geojson";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import land from "world-atlas/land-110m.json";

/** Web Mercator's latitude limit: rings reaching the poles are clamped to it. */
const MAX_LATITUDE = 85.05;

/**
 * A ring made continuous for a flat map: Natural Earth cuts polygons at the
 * antimeridian, so a ring can step from +180 to -180 in one edge, which a
 * flat projection draws as a line across the whole world. Each point is
 * shifted by ±360° to stay within 180° of the one before it.
 */
export function unwrapRing(ring: readonly Position[]): Position[] {
  const out: Position[] = [];
  let shift = 0;
  let previous: number | null = null;
  for (const [lon = 0, lat = 0] of ring) {
    if (previous !== null) {
      const step = lon + shift - previous;
      if (step > 180) shift -= 360;
      else if (step < -180) shift += 360;
    }
    const x = lon + shift;
    out.push([x, Math.max(-MAX_LATITUDE, Math.min(MAX_LATITUDE, lat))]);
    previous = x;
  }
  return out;
}

function unwrapGeometry(geometry: Geometry): Geometry {
  if (geometry.type === "Polygon") {
    return { type: "Polygon", coordinates: geometry.coordinates.map(unwrapRing) } satisfies Polygon;
  }
  if (geometry.type === "MultiPolygon") {
    return {
      type: "MultiPolygon",
      coordinates: geometry.coordinates.map((polygon) => polygon.map(unwrapRing)),
    } satisfies MultiPolygon;
  }
  return geometry;
}

export function worldLand(): FeatureCollection {
  const topology = land as unknown as Topology<{ land: GeometryCollection }>;
  const collection = feature(topology, topology.objects.land);
  return {
    type: "FeatureCollection",
    features: collection.features.map(
      (f): Feature => ({ ...f, geometry: unwrapGeometry(f.geometry) }),
    ),
  };
}
