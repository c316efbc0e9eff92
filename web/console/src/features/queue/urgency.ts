// How the queue is ordered and filtered: pure, unit-tested (urgency.test.ts).
import type { AlertStatus, AlertType } from "@panic-alert/shared/api/types";
import type { LiveAlert } from "../../app/model";
import { isOpen } from "../../app/model";

/** Lower ranks first: escalated, then waiting for a responder, then handled. */
const STATUS_RANK: Readonly<Record<AlertStatus, number>> = {
  escalated: 0,
  dispatching: 1,
  assigned: 2,
  en_route: 3,
  on_scene: 4,
  resolved: 9,
  cancelled: 9,
};

/**
 * Urgency order: status rank; within a rank duress first, then the higher
 * escalation step, then the oldest (it has waited longest).
 */
export function byUrgency(a: LiveAlert, b: LiveAlert): number {
  return (
    STATUS_RANK[a.status] - STATUS_RANK[b.status] ||
    Number(Boolean(b.duress)) - Number(Boolean(a.duress)) ||
    (b.escalation_step ?? 0) - (a.escalation_step ?? 0) ||
    Date.parse(a.created_at) - Date.parse(b.created_at) ||
    a.id.localeCompare(b.id)
  );
}

export interface QueueFilter {
  status: AlertStatus | "all";
  type: AlertType | "all";
}

export function queue(alerts: Iterable<LiveAlert>, filter: QueueFilter): LiveAlert[] {
  const shown: LiveAlert[] = [];
  for (const alert of alerts) {
    if (!isOpen(alert.status)) continue;
    if (filter.status !== "all" && alert.status !== filter.status) continue;
    if (filter.type !== "all" && alert.alert_type !== filter.type) continue;
    shown.push(alert);
  }
  return shown.sort(byUrgency);
}

/** A minute after it was first seen an alert is no longer "new". */
export const NEW_FOR_MS = 60_000;
