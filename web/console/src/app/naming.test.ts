import { describe, expect, it } from "vitest";

import { stepText } from "./naming";

describe("timeline steps in words", () => {
  it("quotes chat messages with their sender", () => {
    expect(stepText({ type: "message", data: { sender_role: "agent", text: "Two minutes away" } })).toBe(
      "message from the responder: Two minutes away",
    );
    expect(stepText({ type: "message", data: { sender_role: "user", text: "Back door" } })).toBe("message from the person: Back door");
  });

  it("reads an estimate and a note", () => {
    expect(stepText({ type: "eta", data: { eta_s: 300 } })).toBe("estimate: arriving in about 5 min");
    expect(stepText({ type: "status_changed", data: { note: "on my way" } })).toBe("status changed: on my way");
    expect(stepText({ type: "created", data: {} })).toBe("created");
  });
});
