import { describe, expect, it } from "vitest";

import type { AdminAlert } from "@panic-alert/shared/api/types";
import { type Fleet, applyFleet, isOpen, patchAlert, replaceFleet, replaceOpen, upsertAlert } from "./model";

function alert(id: string, status: AdminAlert["status"] = "dispatching"): AdminAlert {
  return {
    id,
    status,
    alert_type: "panic",
    latitude: 52.5,
    longitude: 13.4,
    accuracy_m: null,
    description: null,
    silent: false,
    user_id: "u1",
    created_at: "2026-12-04T10:00:00Z",
    updated_at: "2026-12-04T10:00:00Z",
    assigned_agent_id: null,
  };
}

describe("the live alerts", () => {
  it("keeps the first-seen time across upserts and marks a new escalation", () => {
    const first = upsertAlert({}, alert("a"), 1000);
    const second = upsertAlert(first, alert("a", "escalated"), 5000);
    expect(second.a?.seenAt).toBe(1000);
    expect(second.a?.escalatedAt).toBe(5000);
    const third = upsertAlert(second, alert("a", "escalated"), 9000);
    expect(third.a?.escalatedAt).toBe(5000);
  });

  it("patches a known alert and ignores an unknown one", () => {
    const known = upsertAlert({}, alert("a"), 0);
    expect(patchAlert(known, "b", { status: "assigned" }, 1)).toBe(known);
    const patched = patchAlert(known, "a", { status: "assigned", assigned_agent_id: "g1" }, 1);
    expect(patched.a?.status).toBe("assigned");
    expect(patched.a?.assigned_agent_id).toBe("g1");
    expect(patched.a?.alert_type).toBe("panic");
  });

  it("after a resync holds exactly the listed alerts, first-seen times kept", () => {
    const before = upsertAlert(upsertAlert({}, alert("a"), 10), alert("gone"), 10);
    const after = replaceOpen(before, [alert("a"), alert("new")], 99, 50);
    expect(Object.keys(after).sort()).toEqual(["a", "new"]);
    expect(after.a?.seenAt).toBe(10);
    expect(after.new?.seenAt).toBe(99);
  });

  it("keeps what frames brought while the listing was on its way", () => {
    let known = upsertAlert({}, alert("old"), 10);
    known = upsertAlert(known, alert("during"), 60);
    known = upsertAlert(known, { ...alert("moved"), status: "assigned", updated_at: "2026-12-04T10:05:00Z" }, 10);
    const listed = [alert("old"), { ...alert("moved"), updated_at: "2026-12-04T10:01:00Z" }];
    const after = replaceOpen(known, listed, 99, 50);
    expect(Object.keys(after).sort()).toEqual(["during", "moved", "old"]);
    expect(after.moved?.status).toBe("assigned");
  });

  it("knows which statuses are open", () => {
    expect(isOpen("escalated")).toBe(true);
    expect(isOpen("resolved")).toBe(false);
    expect(isOpen("cancelled")).toBe(false);
  });
});

describe("the fleet", () => {
  it("merges a diff into the map in place", () => {
    const fleet: Fleet = new Map();
    applyFleet(fleet, [
      { agent_id: "g1", status: "available", available: true, latitude: 1, longitude: 2, at: "t", heading: null, speed_mps: null, full_name: "Ann" },
    ]);
    applyFleet(fleet, [{ agent_id: "g1", status: "busy", available: false, latitude: 3, longitude: 4, at: "t2", heading: null, speed_mps: null }]);
    expect(fleet.get("g1")).toMatchObject({ status: "busy", latitude: 3, full_name: "Ann" });
  });
});

describe("a fleet resync", () => {
  const agent = (id: string, latitude: number) => ({
    agent_id: id,
    status: "available",
    available: true,
    latitude,
    longitude: 0,
    at: "t",
    heading: null,
    speed_mps: null,
  });

  it("keeps what frames moved while the listing was on its way, and drops the rest", () => {
    const fleet: Fleet = new Map();
    applyFleet(fleet, [agent("old", 1), agent("moved", 2), agent("gone", 3)]);
    const movedAt = new Map([
      ["old", 10],
      ["moved", 60],
    ]);
    replaceFleet(fleet, [agent("old", 5), agent("moved", 6)], movedAt, 50);
    expect([...fleet.keys()].sort()).toEqual(["moved", "old"]);
    expect(fleet.get("old")?.latitude).toBe(5);
    expect(fleet.get("moved")?.latitude).toBe(2);
  });
});
