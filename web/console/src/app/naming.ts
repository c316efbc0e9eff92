// Accessible names and labels, written once: tests and screen readers rely
// on them ("<type> alert <short id>, <status>").
import type { AdminAlert } from "@panic-alert/shared/api/types";

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
