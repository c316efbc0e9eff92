// What the live map draws, as GeoJSON built from the store: pure functions,
// unit-tested (layers.test.ts). Colours are in the layer styles (LiveMap).
import type { FeatureCollection, Point } from "geojson";

import type { FleetAgent } from "@panic-alert/shared/api/types";
import type { LiveAlert } from "../../app/model";
import { isOpen } from "../../app/model";

/** An agent not heard from for this long is drawn faded ("stale"). */
export const STALE_AFTER_MS = 60_000;
const NEW_FOR_MS = 60_000;

export interface AlertProps {
  id: string;
  status: string;
  alert_type: string;
  /** 1 while new (first minute) or just escalated: drawn larger with a halo. */
  prominent: number;
  /** 1 for a silent or duress alert: a distinct ring (dispatchers only see it). */
  covert: number;
}

export function alertFeatures(alerts: Iterable<LiveAlert>, now: number): FeatureCollection<Point, AlertProps> {
  const features = [];
  for (const alert of alerts) {
    if (!isOpen(alert.status)) continue;
    const recent = now - alert.seenAt < NEW_FOR_MS || (alert.escalatedAt !== null && now - alert.escalatedAt < NEW_FOR_MS);
    features.push({
      type: "Feature" as const,
      id: alert.id,
      geometry: { type: "Point" as const, coordinates: [alert.longitude, alert.latitude] },
      properties: {
        id: alert.id,
        status: alert.status,
        alert_type: alert.alert_type,
        prominent: recent || alert.status === "escalated" ? 1 : 0,
        covert: alert.silent || alert.duress ? 1 : 0,
      },
    });
  }
  return { type: "FeatureCollection", features };
}

export interface AgentProps {
  id: string;
  status: string;
  available: number;
  stale: number;
  heading: number;
  has_heading: number;
}

/** Not heard from for a minute (or never). */
export function isStale(agent: FleetAgent, now: number): boolean {
  return agent.at === null || now - Date.parse(agent.at) > STALE_AFTER_MS;
}

export function agentFeatures(fleet: Iterable<FleetAgent>, now: number): FeatureCollection<Point, AgentProps> {
  const features = [];
  for (const agent of fleet) {
    if (agent.status === "offline" || agent.latitude === null || agent.longitude === null) continue;
    const heading = agent.heading;
    features.push({
      type: "Feature" as const,
      geometry: { type: "Point" as const, coordinates: [agent.longitude, agent.latitude] },
      properties: {
        id: agent.agent_id,
        status: agent.status,
        available: agent.available ? 1 : 0,
        stale: isStale(agent, now) ? 1 : 0,
        heading: heading ?? 0,
        has_heading: heading === null ? 0 : 1,
      },
    });
  }
  return { type: "FeatureCollection", features };
}

export interface FleetSummary {
  onDuty: number;
  available: number;
  stale: number;
}

export function summarise(fleet: Iterable<FleetAgent>, now: number): FleetSummary {
  let onDuty = 0;
  let available = 0;
  let stale = 0;
  for (const agent of fleet) {
    if (agent.status === "offline") continue;
    onDuty += 1;
    if (agent.available) available += 1;
    if (isStale(agent, now)) stale += 1;
  }
  return { onDuty, available, stale };
}

/** [[west, south], [east, north]] around the open alerts; null when there is none. */
export function boundsOfAlerts(alerts: Iterable<LiveAlert>): [[number, number], [number, number]] | null {
  let west = Infinity;
  let south = Infinity;
  let east = -Infinity;
  let north = -Infinity;
  for (const alert of alerts) {
    if (!isOpen(alert.status)) continue;
    west = Math.min(west, alert.longitude);
    east = Math.max(east, alert.longitude);
    south = Math.min(south, alert.latitude);
    north = Math.max(north, alert.latitude);
  }
  return west === Infinity ? null : [[west, south], [east, north]];
}
