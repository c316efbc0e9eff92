import { describe, expect, it } from "vitest";

import { secondsLeft } from "./offer";

describe("the responder app's decisions", () => {
  it("counts an offer down to zero", () => {
    expect(secondsLeft("2026-01-01T00:00:30Z", Date.parse("2026-01-01T00:00:10.2Z"))).toBe(20);
    expect(secondsLeft("2026-01-01T00:00:30Z", Date.parse("2026-01-01T00:01:00Z"))).toBe(0);
  });
});
