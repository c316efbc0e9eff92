// The live picture's pure core: how frames and resyncs change the console's
// state. No I/O, no timers: app/live.ts holds the state and the socket
// (app/socket.ts) feeds it.
import type { AdminAlert, AlertStatus, FleetAgent } from "@panic-alert/shared/api/types";

export const OPEN_STATUSES: readonly AlertStatus[] = [
  "dispatching",
  "escalated",
  "assigned",
  "en_route",
  "on_scene",
];

export function isOpen(status: AlertStatus): boolean {
  return OPEN_STATUSES.includes(status);
}

export interface LiveAlert extends AdminAlert {
  /** When this console first saw it (ms since the epoch): "new" for a minute. */
  seenAt: number;
  /** When it was last escalated, as far as this console knows. */
  escalatedAt: number | null;
}

export type Alerts = Readonly<Record<string, LiveAlert>>;

/** A whole alert (resync, REST read or `alert.created`) replaces what was known. */
export function upsertAlert(alerts: Alerts, alert: AdminAlert, now: number): Alerts {
  const known = alerts[alert.id];
  const escalated = alert.status === "escalated" && known?.status !== "escalated";
  return {
    ...alerts,
    [alert.id]: {
      ...alert,
      seenAt: known?.seenAt ?? now,
      escalatedAt: escalated ? now : (known?.escalatedAt ?? null),
    },
  };
}

/** A partial change (`alert.updated`, `alert.escalated`); unknown alerts are left to a read. */
export function patchAlert(
  alerts: Alerts,
  alertId: string,
  patch: Partial<AdminAlert>,
  now: number,
): Alerts {
  const known = alerts[alertId];
  if (!known) return alerts;
  // Frames leave out null fields (never send undefined), so a spread keeps what they omit.
  const next: LiveAlert = { ...known, ...patch, id: alertId };
  if (next.status === "escalated" && known.status !== "escalated") next.escalatedAt = now;
  return { ...alerts, [alertId]: next };
}

/**
 * After a resync that started at `since`: the open alerts the server listed,
 * first-seen times kept. What frames brought while the listing was on its way
 * is newer than the listing: an alert first seen since then stays, and a
 * known alert updated later than its listed copy keeps the later version.
 */
export function replaceOpen(alerts: Alerts, fresh: readonly AdminAlert[], now: number, since: number): Alerts {
  const merged: Record<string, LiveAlert> = {};
  for (const alert of fresh) {
    const known = alerts[alert.id];
    if (known && Date.parse(known.updated_at) > Date.parse(alert.updated_at)) {
      if (isOpen(known.status)) merged[alert.id] = known;
      continue;
    }
    const one = upsertAlert(known ? { [alert.id]: known } : {}, alert, now)[alert.id];
    if (one) merged[alert.id] = one;
  }
  for (const known of Object.values(alerts)) {
    if (!(known.id in merged) && known.seenAt >= since && isOpen(known.status)) merged[known.id] = known;
  }
  return merged;
}

export type Fleet = Map<string, FleetAgent>;

/** Apply a `fleet.agents` diff in place (5,000 agents: no copy per frame). */
export function applyFleet(fleet: Fleet, agents: readonly FleetAgent[]): void {
  for (const agent of agents) {
    const known = fleet.get(agent.agent_id);
    fleet.set(agent.agent_id, known ? { ...known, ...agent } : agent);
  }
}

/**
 * After a resync asked for at `since`: the fleet the server listed, except the
 * agents a `fleet.agents` frame moved since then (`movedAt`, ms), which are
 * newer than the listing and stay as the frame left them.
 */
export function replaceFleet(
  fleet: Fleet,
  fresh: readonly FleetAgent[],
  movedAt: ReadonlyMap<string, number>,
  since: number,
): void {
  const newer = new Map<string, FleetAgent>();
  for (const [id, at] of movedAt) {
    const agent = fleet.get(id);
    if (at >= since && agent) newer.set(id, agent);
  }
  fleet.clear();
  applyFleet(fleet, fresh);
  for (const [id, agent] of newer) fleet.set(id, agent);
}
