import { describe, expect, it } from "vitest";

import { boundsOf, responseFeatures } from "./response";

function roles(drawn: ReturnType<typeof responseFeatures>): string[] {
  return drawn.features.map((f) => (f.properties as { role: string }).role);
}

const person = { latitude: 52.52, longitude: 13.405 };
const responder = { latitude: 52.53, longitude: 13.39 };

describe("the response map", () => {
  it("draws a line from the responder to the person only when both are known", () => {
    const both = responseFeatures(person, responder);
    expect(roles(both)).toEqual(["route", "person", "responder"]);
    expect(both.features[0]?.geometry).toEqual({ type: "LineString", coordinates: [[13.39, 52.53], [13.405, 52.52]] });
    expect(roles(responseFeatures(person, null))).toEqual(["person"]);
    expect(responseFeatures(null, null).features).toEqual([]);
  });

  it("frames the points it has", () => {
    expect(boundsOf([person, responder])).toEqual([
      [13.39, 52.52],
      [13.405, 52.53],
    ]);
    expect(boundsOf([])).toBeNull();
  });
});
