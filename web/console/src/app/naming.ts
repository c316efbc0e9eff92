// Accessible names and labels, written once: tests and screen readers rely
// on them ("<type> alert <short id>, <status>").
import type { AdminAlert, TimelineEntry } from "@panic-alert/shared/api/types";
import { etaText } from "@panic-alert/shared/live/position";

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export const STATUS_LABEL: Readonly<Record<AdminAlert["status"], string>> = {
  dispatching: "dispatching",
  escalated: "escalated",
  assigned: "assigned",
  en_route: "en route",
  on_scene: "on scene",
  resolved: "resolved",
  cancelled: "cancelled",
};

export function describeAlert(alert: Pick<AdminAlert, "alert_type" | "id" | "status" | "silent" | "duress">): string {
  const marks = [alert.duress ? "duress" : null, alert.silent ? "silent" : null].filter(Boolean);
  const extra = marks.length ? `, ${marks.join(", ")}` : "";
  return `${alert.alert_type} alert ${shortId(alert.id)}, ${STATUS_LABEL[alert.status]}${extra}`;
}

const SENDER: Readonly<Record<string, string>> = { user: "person", agent: "responder", admin: "dispatcher" };

/** One timeline step in words: its type, then what it says (a note, a chat message, an estimate). */
export function stepText(step: Pick<TimelineEntry, "type" | "data">): string {
  const data = step.data;
  if (step.type === "message" && typeof data.text === "string") {
    return `message from the ${SENDER[String(data.sender_role)] ?? "unknown sender"}: ${data.text}`;
  }
  if (step.type === "eta" && typeof data.eta_s === "number") {
    return `estimate: ${etaText(data.eta_s).toLowerCase()}`;
  }
  const kind = step.type.replaceAll("_", " ");
  return typeof data.note === "string" ? `${kind}: ${data.note}` : kind;
}
