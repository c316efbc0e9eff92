import { describe, expect, it } from "vitest";

import type { LiveAlert } from "../../app/model";
import { elapsed } from "../../shared/Elapsed";
import { byUrgency, queue } from "./urgency";

function live(id: string, status: LiveAlert["status"], created: string, extra: Partial<LiveAlert> = {}): LiveAlert {
  return {
    id,
    status,
    alert_type: "panic",
    latitude: 0,
    longitude: 0,
    accuracy_m: null,
    description: null,
    silent: false,
    user_id: "u",
    created_at: created,
    updated_at: created,
    assigned_agent_id: null,
    seenAt: 0,
    escalatedAt: null,
    ...extra,
  };
}

describe("the queue", () => {
  it("puts escalated first, then waiting, duress before others, oldest first", () => {
    const alerts = [
      live("on-scene", "on_scene", "2026-01-01T00:00:00Z"),
      live("young", "dispatching", "2026-01-01T00:05:00Z"),
      live("old", "dispatching", "2026-01-01T00:01:00Z"),
      live("duress", "dispatching", "2026-01-01T00:09:00Z", { duress: true }),
      live("esc", "escalated", "2026-01-01T00:10:00Z"),
      live("done", "resolved", "2026-01-01T00:00:00Z"),
    ];
    expect(queue(alerts, { status: "all", type: "all" }).map((a) => a.id)).toEqual([
      "esc",
      "duress",
      "old",
      "young",
      "on-scene",
    ]);
  });

  it("filters by status and type", () => {
    const alerts = [
      live("a", "dispatching", "2026-01-01T00:00:00Z"),
      live("b", "assigned", "2026-01-01T00:00:00Z", { alert_type: "fire" }),
    ];
    expect(queue(alerts, { status: "assigned", type: "all" }).map((a) => a.id)).toEqual(["b"]);
    expect(queue(alerts, { status: "all", type: "fire" }).map((a) => a.id)).toEqual(["b"]);
    expect(queue(alerts, { status: "dispatching", type: "fire" })).toEqual([]);
  });

  it("orders a higher escalation step first within a status", () => {
    const a = live("a", "escalated", "2026-01-01T00:00:00Z", { escalation_step: 1 });
    const b = live("b", "escalated", "2026-01-01T00:05:00Z", { escalation_step: 2 });
    expect([a, b].sort(byUrgency).map((x) => x.id)).toEqual(["b", "a"]);
  });
});

describe("timers", () => {
  it("reads as seconds, minutes or hours", () => {
    expect(elapsed(0, 45_000)).toBe("45 s");
    expect(elapsed(0, 185_000)).toBe("3 min 05 s");
    expect(elapsed(0, 7_440_000)).toBe("2 h 04 min");
    expect(elapsed(10_000, 0)).toBe("0 s");
  });
});
