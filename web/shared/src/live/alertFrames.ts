// The frames both apps follow during a response, and the chat's pure rules
// (tested). Shapes as the gateway pushes them (gateway/ws/frames.py).
import type { Point } from "./position";

/** `alert.message`: one chat message of an alert (also `GET /alerts/{id}/messages`' items). */
export interface ChatMessage {
  alert_id: string;
  message_id: string;
  sender_role: "user" | "agent" | "admin";
  sender_id: string;
  text: string;
  at: string;
}

/** `alert.eta`: the server's estimate of the responder's arrival. */
export interface Eta {
  alert_id: string;
  agent_id: string;
  eta_s: number;
  distance_m: number;
  method: string;
  at: string;
}

/** `agent.location` (to the user) and `alert.location` (to the responder). */
export interface LivePosition extends Point {
  alert_id: string;
  accuracy_m: number | null;
  at: string;
}

/** Longest message the server takes (characters, after trimming). */
export const MAX_MESSAGE = 500;

/** `incoming` merged into `list`: each message once (by id), oldest first. */
export function mergeMessages(list: readonly ChatMessage[], incoming: readonly ChatMessage[]): ChatMessage[] {
  const byId = new Map(list.map((m) => [m.message_id, m]));
  for (const message of incoming) byId.set(message.message_id, message);
  return [...byId.values()].sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.message_id.localeCompare(b.message_id));
}

/** The text to send, or null when there is nothing to send (blank) — too long is cut. */
export function outgoing(text: string): string | null {
  const trimmed = text.trim();
  return trimmed === "" ? null : trimmed.slice(0, MAX_MESSAGE);
}

/** Who wrote `message`, as `me` (the app's own role) reads it. */
export function senderText(message: ChatMessage, me: "user" | "agent"): string {
  if (message.sender_role === me) return "You";
  if (message.sender_role === "admin") return "Dispatcher";
  return message.sender_role === "agent" ? "Responder" : "Person";
}
