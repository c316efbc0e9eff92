import { describe, expect, it } from "vitest";

import type { LiveAlert } from "../../app/model";
import { agentFeatures, alertFeatures, boundsOfAlerts, summarise } from "./layers";

const base: LiveAlert = {
  id: "a1",
  status: "dispatching",
  alert_type: "fire",
  latitude: 1,
  longitude: 2,
  accuracy_m: null,
  description: null,
  silent: false,
  user_id: "u",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  assigned_agent_id: null,
  seenAt: 0,
  escalatedAt: null,
};

describe("map features", () => {
  it("draws open alerts only, new ones prominent, silent and duress marked", () => {
    const features = alertFeatures(
      [base, { ...base, id: "a2", status: "resolved" }, { ...base, id: "a3", duress: true, seenAt: -120_000 }],
      1000,
    ).features;
    expect(features.map((f) => f.properties.id)).toEqual(["a1", "a3"]);
    expect(features[0]?.geometry.coordinates).toEqual([2, 1]);
    expect(features[0]?.properties.prominent).toBe(1);
    expect(features[1]?.properties).toMatchObject({ prominent: 0, covert: 1 });
  });

  it("leaves offline agents out and fades stale ones", () => {
    const now = Date.parse("2026-01-01T00:10:00Z");
    const fleet = [
      { agent_id: "g1", status: "available", available: true, latitude: 0, longitude: 0, at: "2026-01-01T00:09:50Z", heading: 90, speed_mps: null },
      { agent_id: "g2", status: "busy", available: false, latitude: 0, longitude: 0, at: "2026-01-01T00:00:00Z", heading: null, speed_mps: null },
      { agent_id: "g3", status: "offline", available: false, latitude: 0, longitude: 0, at: "2026-01-01T00:09:59Z", heading: null, speed_mps: null },
      { agent_id: "g4", status: "available", available: true, latitude: null, longitude: null, at: null, heading: null, speed_mps: null },
    ];
    const features = agentFeatures(fleet, now).features;
    expect(features.map((f) => f.properties.id)).toEqual(["g1", "g2"]);
    expect(features[0]?.properties).toMatchObject({ stale: 0, heading: 90, has_heading: 1, available: 1 });
    expect(features[1]?.properties).toMatchObject({ stale: 1, has_heading: 0 });
    expect(summarise(fleet, now)).toEqual({ onDuty: 3, available: 2, stale: 2 });
  });
});

describe("the first view", () => {
  it("frames the open alerts, or nothing without any", () => {
    const alerts = [
      { ...base, latitude: 10, longitude: -5 },
      { ...base, id: "a2", latitude: 12, longitude: 3 },
      { ...base, id: "a3", latitude: 80, longitude: 90, status: "resolved" as const },
    ];
    expect(boundsOfAlerts(alerts)).toEqual([
      [-5, 10],
      [3, 12],
    ]);
    expect(boundsOfAlerts([])).toBeNull();
  });
});
