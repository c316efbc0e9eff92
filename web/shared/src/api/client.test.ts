import { describe, expect, it } from "vitest";

import { ApiError, withQuery } from "./client";

describe("the API client", () => {
  it("names a problem by its type's last part", () => {
    expect(new ApiError(401, { type: "urn:panic-alert:problem:totp-required" }).kind).toBe("totp-required");
    expect(new ApiError(401, { type: "https://example.org/problems/totp-invalid" }).kind).toBe("totp-invalid");
    expect(new ApiError(404, {}).kind).toBe("about:blank".split(":").pop());
  });

  it("keeps the validation errors and the detail", () => {
    const error = new ApiError(422, { detail: "bad", errors: [{ loc: ["body", "name"], msg: "required" }] });
    expect(error.message).toBe("bad");
    expect(error.issues).toEqual([{ loc: ["body", "name"], msg: "required" }]);
  });

  it("leaves empty query values out", () => {
    expect(withQuery("/alerts", { status: "escalated", cursor: null, limit: 100, x: "" })).toBe(
      "/alerts?status=escalated&limit=100",
    );
    expect(withQuery("/alerts")).toBe("/alerts");
  });
});
