// The one store of the live picture, fed by the one socket (app/socket.ts).
// Alerts are React state (a few hundred); the fleet (thousands of agents
// moving every second) is a mutable Map outside React, with a version
// number that the map and the roster watch, so a position update never
// re-renders the queue.
import { create } from "zustand";

import type { AdminAlert, FleetAgent } from "@panic-alert/shared/api/types";
import {
  type Alerts,
  type Fleet,
  applyFleet,
  patchAlert,
  replaceFleet,
  replaceOpen,
  upsertAlert,
} from "./model";

export type Connection = "connecting" | "live" | "offline";

export interface Announcement {
  id: number;
  text: string;
}

interface LiveState {
  alerts: Alerts;
  connection: Connection;
  /** Bumped when the fleet Map changed. */
  fleetVersion: number;
  /** Bumped per alert when its media or timeline changed. */
  alertVersions: Readonly<Record<string, number>>;
  /** Live position of each alert's user, from `alert.location`. */
  userPositions: Readonly<Record<string, { latitude: number; longitude: number; at: string | null }>>;
  announcement: Announcement | null;
  resyncs: number;
}

export const fleet: Fleet = new Map();
/** When a frame last moved each agent (ms): a resync keeps those newer than itself. */
const movedAt = new Map<string, number>();

export const useLive = create<LiveState>(() => ({
  alerts: {},
  connection: "offline",
  fleetVersion: 0,
  alertVersions: {},
  userPositions: {},
  announcement: null,
  resyncs: 0,
}));

let announcementId = 0;

export function announce(text: string): void {
  announcementId += 1;
  useLive.setState({ announcement: { id: announcementId, text } });
}

export const live = {
  setConnection(connection: Connection): void {
    useLive.setState({ connection });
  },
  /** The REST snapshot asked for at `since` (ms) arrived. */
  resynced(open: readonly AdminAlert[], agents: readonly FleetAgent[] | null, since: number): void {
    if (agents) replaceFleet(fleet, agents, movedAt, since);
    useLive.setState((s) => ({
      alerts: replaceOpen(s.alerts, open, Date.now(), since),
      fleetVersion: s.fleetVersion + 1,
      resyncs: s.resyncs + 1,
    }));
  },
  alert(alert: AdminAlert): void {
    useLive.setState((s) => ({ alerts: upsertAlert(s.alerts, alert, Date.now()) }));
  },
  patch(alertId: string, patch: Partial<AdminAlert>): void {
    useLive.setState((s) => ({
      alerts: patchAlert(s.alerts, alertId, patch, Date.now()),
      alertVersions: { ...s.alertVersions, [alertId]: (s.alertVersions[alertId] ?? 0) + 1 },
    }));
  },
  touched(alertId: string): void {
    useLive.setState((s) => ({
      alertVersions: { ...s.alertVersions, [alertId]: (s.alertVersions[alertId] ?? 0) + 1 },
    }));
  },
  userPosition(alertId: string, latitude: number, longitude: number, at: string | null): void {
    useLive.setState((s) => ({
      userPositions: { ...s.userPositions, [alertId]: { latitude, longitude, at } },
    }));
  },
  fleet(agents: readonly FleetAgent[]): void {
    const now = Date.now();
    for (const agent of agents) movedAt.set(agent.agent_id, now);
    applyFleet(fleet, agents);
    useLive.setState((s) => ({ fleetVersion: s.fleetVersion + 1 }));
  },
  clear(): void {
    fleet.clear();
    movedAt.clear();
    useLive.setState({ alerts: {}, alertVersions: {}, userPositions: {}, connection: "offline" });
  },
};
