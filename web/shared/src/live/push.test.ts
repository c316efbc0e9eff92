import { describe, expect, it } from "vitest";

import { keyBytes, pushOutcomeText } from "./push";

describe("web push", () => {
  it("decodes the server's base64url key to bytes", () => {
    expect([...keyBytes("AQID_-8")]).toEqual([1, 2, 3, 255, 239]);
    expect(keyBytes("").length).toBe(0);
  });

  it("says plainly what came of turning notifications on", () => {
    expect(pushOutcomeText("on")).toMatch(/on for this device/);
    expect(pushOutcomeText("denied")).toMatch(/blocked/);
    expect(pushOutcomeText("failed")).toMatch(/Keep the app open/);
  });
});
