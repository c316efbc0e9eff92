import { describe, expect, it } from "vitest";

import {
  boundsOf,
  circlePolygon,
  closeRing,
  featureToZone,
  featuresOf,
  fieldOfLoc,
  formatCoordinates,
  parseCoordinates,
  zoneFeatures,
} from "./geometry";
import type { Zone } from "@panic-alert/shared/api/types";

const metres = ([lon1, lat1]: [number, number], [lon2, lat2]: [number, number]) => {
  const r = 6_371_008.8;
  const rad = Math.PI / 180;
  const a =
    Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(a));
};

describe("circlePolygon", () => {
  it("is a closed 64-gon whose vertices are radius metres from the centre", () => {
    const centre: [number, number] = [13.4, 52.5];
    const ring = (circlePolygon(centre, 500).coordinates[0] ?? []) as [number, number][];
    expect(ring).toHaveLength(65);
    expect(ring[64]).toEqual(ring[0]);
    for (const p of ring) expect(metres(centre, p)).toBeCloseTo(500, 3);
    // The first vertex is due north.
    expect(ring[0]?.[0]).toBeCloseTo(13.4, 9);
    expect(ring[0]?.[1]).toBeGreaterThan(52.5);
  });

  it("takes another number of steps", () => {
    expect(circlePolygon([0, 0], 10, 8).coordinates[0]).toHaveLength(9);
  });
});

describe("closeRing", () => {
  it("repeats the first vertex last, once", () => {
    const open: [number, number][] = [[0, 0], [1, 0], [1, 1]];
    expect(closeRing(open)?.coordinates[0]).toEqual([[0, 0], [1, 0], [1, 1], [0, 0]]);
    expect(closeRing([...open, [0, 0]])?.coordinates[0]).toEqual([[0, 0], [1, 0], [1, 1], [0, 0]]);
  });

  it("needs three vertices", () => {
    expect(closeRing([[0, 0], [1, 1]])).toBeNull();
    expect(closeRing([[0, 0], [1, 1], [0, 0]])).toBeNull();
  });
});

describe("coordinates text", () => {
  it("reads lon,lat per line, skipping blank lines", () => {
    expect(parseCoordinates("13.4,52.5\n\n 13.5 , 52.6 \r\n13.5 52.5")).toEqual({
      ok: true,
      value: [[13.4, 52.5], [13.5, 52.6], [13.5, 52.5]],
    });
  });

  it("names the line that is wrong", () => {
    expect(parseCoordinates("1,2\nabc")).toEqual({ ok: false, error: 'line 2: expected "longitude,latitude", got "abc"' });
    const far = parseCoordinates("200,1");
    expect(far.ok).toBe(false);
  });

  it("round-trips through formatCoordinates", () => {
    const text = formatCoordinates([[13.123456789, 52.1], [-1, 0]]);
    expect(text).toBe("13.123457,52.1\n-1,0");
    expect(parseCoordinates(text)).toEqual({ ok: true, value: [[13.123457, 52.1], [-1, 0]] });
  });
});

describe("fieldOfLoc", () => {
  it("maps each loc to the field it names", () => {
    expect(fieldOfLoc(["body", "name"])).toBe("name");
    expect(fieldOfLoc(["body", "kind"])).toBe("kind");
    expect(fieldOfLoc(["body", "geometry"])).toBe("geometry");
    expect(fieldOfLoc(["body", "geometry", "Polygon", "coordinates", 0, 1])).toBe("geometry");
    expect(fieldOfLoc(["body", "radius_m"])).toBe("radius_m");
    expect(fieldOfLoc(["body", "active"])).toBe("active");
    expect(fieldOfLoc(["body", "rules", "agent_ids"])).toBe("rules");
    expect(fieldOfLoc(["body"])).toBe("form");
    expect(fieldOfLoc(["name"])).toBe("name");
  });
});

describe("featureToZone", () => {
  const polygon = { type: "Polygon", coordinates: [[[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 0, 5]]] };

  it("takes name, kind, radius and active from the properties", () => {
    const point = { type: "Feature", properties: { name: "Gate", kind: "danger", radius_m: 50, active: false }, geometry: { type: "Point", coordinates: [2, 3] } };
    expect(featureToZone(point, "safe")).toEqual({
      ok: true,
      value: { name: "Gate", kind: "danger", geometry: { type: "Point", coordinates: [2, 3] }, radius_m: 50, active: false },
    });
  });

  it("takes the rules given as properties", () => {
    const area = { type: "Feature", properties: { name: "Area", kind: "service_area", agent_ids: ["a1", 5] }, geometry: polygon };
    const result = featureToZone(area, "safe");
    expect(result.ok && result.value.rules).toEqual({ notify_subject: false, notify_admins: false, end_check_in: false, agent_ids: ["a1"] });
  });

  it("defaults the kind, keeps it active and drops altitudes", () => {
    const result = featureToZone({ type: "Feature", id: 7, properties: null, geometry: polygon }, "service_area");
    expect(result).toEqual({
      ok: true,
      value: { name: "7", kind: "service_area", active: true, geometry: { type: "Polygon", coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] } },
    });
  });

  it("says why a feature cannot be a zone", () => {
    expect(featureToZone({ type: "Feature", properties: {}, geometry: polygon }, "safe")).toEqual({
      ok: false,
      error: "the feature has no name (properties.name)",
    });
    const line = { type: "Feature", properties: { name: "x" }, geometry: { type: "LineString", coordinates: [[0, 0], [1, 1]] } };
    expect(featureToZone(line, "safe").ok).toBe(false);
    expect(featureToZone({ type: "Feature", properties: { name: "x", kind: "moat" }, geometry: polygon }, "safe").ok).toBe(false);
    expect(featureToZone({ type: "Feature", properties: { name: "x" }, geometry: { type: "Polygon", coordinates: [["a"]] } }, "safe").ok).toBe(false);
    expect(featureToZone("nope", "safe").ok).toBe(false);
  });

  it("finds the features of a collection or a lone feature", () => {
    expect(featuresOf({ type: "FeatureCollection", features: [1, 2] })).toEqual({ ok: true, value: [1, 2] });
    expect(featuresOf({ type: "Feature" })).toEqual({ ok: true, value: [{ type: "Feature" }] });
    expect(featuresOf([]).ok).toBe(false);
  });
});

describe("zone features", () => {
  const zone = (over: Partial<Zone>): Zone => ({
    id: "z",
    name: "Z",
    kind: "safe",
    active: true,
    geometry: { type: "Point", coordinates: [10, 20] },
    radius_m: 100,
    created_at: "",
    updated_at: "",
    revision: 1,
    rules: { agent_ids: null, dwell_s: null, end_check_in: false, notify_admins: false, notify_subject: false },
    ...over,
  });

  it("draws Points as circles and keeps polygons", () => {
    const square = { type: "Polygon" as const, coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]] as [number, number][]] };
    const fc = zoneFeatures([zone({}), zone({ id: "p", kind: "danger", active: false, geometry: square, radius_m: null })]);
    expect(fc.features).toHaveLength(2);
    expect(fc.features[0]?.geometry.coordinates[0]).toHaveLength(65);
    expect(fc.features[1]?.properties).toEqual({ id: "p", name: "Z", kind: "danger", active: 0 });
    expect(boundsOf([square])).toEqual([[0, 0], [1, 1]]);
    expect(boundsOf([])).toBeNull();
  });
});
