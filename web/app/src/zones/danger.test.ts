import { describe, expect, it } from "vitest";

import { added, warningOf } from "./danger";

const frame = (data: Record<string, unknown>) => ({ type: "geofence.alert", data });

describe("warningOf", () => {
  it("takes a danger zone's entry with its name", () => {
    expect(warningOf(frame({ zone_id: "z1", zone_name: " Dock 9 ", zone_kind: "danger", event: "enter", at: "T" }))).toEqual({
      zoneId: "z1",
      zoneName: "Dock 9",
      at: "T",
    });
  });

  it("names an unnamed zone in words", () => {
    expect(warningOf(frame({ zone_id: "z1", zone_name: "" }))?.zoneName).toBe("a danger zone");
  });

  it("ignores other frames, exits and frames without a zone", () => {
    expect(warningOf({ type: "alert.updated", data: { zone_id: "z1" } })).toBeNull();
    expect(warningOf(frame({ zone_id: "z1", event: "exit" }))).toBeNull();
    expect(warningOf(frame({ zone_id: "z1", zone_kind: "safe" }))).toBeNull();
    expect(warningOf(frame({ zone_name: "x" }))).toBeNull();
  });
});

describe("added", () => {
  it("puts the newest first and keeps one per zone", () => {
    const a = { zoneId: "a", zoneName: "A", at: "1" };
    const b = { zoneId: "b", zoneName: "B", at: "2" };
    const again = { ...a, at: "3" };
    expect(added(added([], a), b)).toEqual([b, a]);
    expect(added([b, a], again)).toEqual([again, b]);
  });
});
