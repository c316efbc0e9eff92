import { describe, expect, it } from "vitest";

import { unwrapRing, worldLand } from "./world";

describe("the world outline", () => {
  it("never steps more than 180 degrees between points", () => {
    const ring = unwrapRing([
      [170, 10],
      [180, 10],
      [-180, 20],
      [-170, 20],
    ]);
    expect(ring).toEqual([
      [170, 10],
      [180, 10],
      [180, 20],
      [190, 20],
    ]);
  });

  it("clamps the poles to Web Mercator's limit", () => {
    expect(unwrapRing([[0, -90]])).toEqual([[0, -85.05]]);
  });

  it("ships land polygons with no antimeridian jump", () => {
    const land = worldLand();
    expect(land.features.length).toBeGreaterThan(0);
    for (const feature of land.features) {
      const geometry = feature.geometry;
      const polygons = geometry.type === "MultiPolygon" ? geometry.coordinates : geometry.type === "Polygon" ? [geometry.coordinates] : [];
      for (const ring of polygons.flat()) {
        for (let i = 1; i < ring.length; i += 1) {
          expect(Math.abs((ring[i]?.[0] ?? 0) - (ring[i - 1]?.[0] ?? 0))).toBeLessThanOrEqual(180);
        }
      }
    }
  });
});
