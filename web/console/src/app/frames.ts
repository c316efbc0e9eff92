// The /ws frames the console reads, and the pure decisions around the
// socket: reconnect back-off and ping cadence (API.md: a client pings every
// third of `auth.ok`'s heartbeat_timeout_s).
import type {
  AdminAlert,
  AlertCreated,
  AlertEscalated,
  AlertUpdated,
  AuthOk,
  FleetFrame,
  LocationPush,
  MediaAdded,
} from "@panic-alert/shared/api/types";

export type ServerFrame =
  | { type: "auth.ok"; data: AuthOk }
  | { type: "pong"; data: unknown }
  | { type: "alert.created"; data: AlertCreated }
  | { type: "alert.updated"; data: AlertUpdated & Partial<AdminAlert> }
  | { type: "alert.escalated"; data: AlertEscalated }
  | { type: "alert.location"; data: LocationPush }
  | { type: "fleet.agents"; data: FleetFrame }
  | { type: "media.added"; data: MediaAdded }
  | { type: "error"; data: { code: string; message: string } };

const KNOWN = new Set([
  "auth.ok",
  "pong",
  "alert.created",
  "alert.updated",
  "alert.escalated",
  "alert.location",
  "fleet.agents",
  "media.added",
  "error",
]);

/** A frame this console understands, or null (unknown types are additive: ignored). */
export function parseFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { type, data } = value as { type?: unknown; data?: unknown };
  if (typeof type !== "string" || !KNOWN.has(type)) return null;
  if (typeof data !== "object" || data === null) return null;
  return value as ServerFrame;
}

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 10 s, ±20 %. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(10_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Ping every third of the server's heartbeat timeout, ±10 %. */
export function pingEveryMs(heartbeatTimeoutS: number, random: () => number = Math.random): number {
  return Math.round((heartbeatTimeoutS * 1000 * (0.9 + 0.2 * random())) / 3);
}

export const CLOSE_UNAUTHORIZED = 4401;
