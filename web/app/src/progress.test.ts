import { describe, expect, it } from "vitest";

import { isOpen, isResponding, progressText } from "./progress";

describe("the alert's progress in plain words", () => {
  it("names each stage", () => {
    expect(progressText("dispatching")).toBe("Looking for a responder");
    expect(progressText("escalated")).toBe("Looking for a responder");
    expect(progressText("assigned")).toBe("A responder is coming");
    expect(progressText("en_route")).toBe("A responder is coming");
    expect(progressText("on_scene")).toBe("A responder is with you");
    expect(progressText("resolved")).toBe("Resolved");
    expect(progressText("cancelled")).toBe("Cancelled");
  });

  it("knows which are over", () => {
    expect(isOpen("assigned")).toBe(true);
    expect(isOpen("resolved")).toBe(false);
    expect(isOpen("cancelled")).toBe(false);
  });

  it("knows when a responder has it", () => {
    expect(isResponding("dispatching")).toBe(false);
    expect(isResponding("assigned")).toBe(true);
    expect(isResponding("on_scene")).toBe(true);
    expect(isResponding("resolved")).toBe(false);
  });
});
