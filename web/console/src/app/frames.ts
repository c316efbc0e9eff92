// The /ws frames the console reads; the socket's back-off and ping cadence
// are shared with the apps.
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
import type { ChatMessage, Eta } from "@panic-alert/shared/live/alertFrames";
import { parse } from "@panic-alert/shared/live/socket";

export type ServerFrame =
  | { type: "auth.ok"; data: AuthOk }
  | { type: "pong"; data: unknown }
  | { type: "alert.created"; data: AlertCreated }
  | { type: "alert.updated"; data: AlertUpdated & Partial<AdminAlert> }
  | { type: "alert.escalated"; data: AlertEscalated }
  | { type: "alert.location"; data: LocationPush }
  | { type: "fleet.agents"; data: FleetFrame }
  | { type: "media.added"; data: MediaAdded }
  | { type: "alert.message"; data: ChatMessage }
  | { type: "alert.eta"; data: Eta }
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
  "alert.message",
  "alert.eta",
  "error",
]);

/** A frame this console understands, or null (unknown types are additive: ignored). */
export function parseFrame(text: string): ServerFrame | null {
  const frame = parse(text);
  return frame && KNOWN.has(frame.type) ? (frame as unknown as ServerFrame) : null;
}

// The socket's cadence and close codes are the apps' too (web/shared/src/live/socket.ts).
export { CLOSE_UNAUTHORIZED, backoffMs, pingEveryMs } from "@panic-alert/shared/live/socket";
