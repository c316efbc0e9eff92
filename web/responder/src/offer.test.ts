import { describe, expect, it } from "vitest";

import { distanceText, metresBetween, secondsLeft, worthSending } from "./offer";

describe("the responder app's decisions", () => {
  it("says distances in words", () => {
    expect(distanceText(420.4)).toBe("420 m away");
    expect(distanceText(2345)).toBe("2.3 km away");
  });

  it("counts an offer down to zero", () => {
    expect(secondsLeft("2026-01-01T00:00:30Z", Date.parse("2026-01-01T00:00:10.2Z"))).toBe(20);
    expect(secondsLeft("2026-01-01T00:00:30Z", Date.parse("2026-01-01T00:01:00Z"))).toBe(0);
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
