import { describe, expect, it } from "vitest";

import { distanceText, etaText, metresBetween, worthSending } from "./position";

describe("positions in both apps", () => {
  it("says distances in words", () => {
    expect(distanceText(420.4)).toBe("420 m away");
    expect(distanceText(2345)).toBe("2.3 km away");
  });

  it("says arrival times in words, rounded up to the minute", () => {
    expect(etaText(0)).toBe("Arriving now");
    expect(etaText(31)).toBe("Arriving in about 1 min");
    expect(etaText(240)).toBe("Arriving in about 4 min");
    expect(etaText(241)).toBe("Arriving in about 5 min");
    expect(etaText(3600)).toBe("Arriving in about 1 h");
    expect(etaText(5400)).toBe("Arriving in about 1 h 30 min");
  });

  it("measures on the sphere", () => {
    expect(metresBetween({ latitude: 0, longitude: 0 }, { latitude: 0, longitude: 1 })).toBeCloseTo(111_195, -1);
  });

  it("sends a position when it moved enough or is old", () => {
    const at = { latitude: 52.5, longitude: 13.4, at: 0 };
    expect(worthSending(null, at)).toBe(true);
    expect(worthSending(at, { latitude: 52.5001, longitude: 13.4, at: 1000 })).toBe(false);
    expect(worthSending(at, { latitude: 52.5005, longitude: 13.4, at: 1000 })).toBe(true);
    expect(worthSending(at, { latitude: 52.5, longitude: 13.4, at: 31_000 })).toBe(true);
  });
});
