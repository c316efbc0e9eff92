// Which status changes the detail offers: the edges of the server's status
// graph (actors/alert_state.py ALLOWED_TRANSITIONS) an admin may ask for. The
// server decides; a stale view gets its 409 shown in place.
import type { AlertStatus } from "@panic-alert/shared/api/types";

export interface StatusAction {
  status: AlertStatus;
  label: string;
  /** A note is asked for (resolve, cancel). */
  note: boolean;
}

const ESCALATE: StatusAction = { status: "escalated", label: "Escalate", note: false };
const RESOLVE: StatusAction = { status: "resolved", label: "Resolve", note: true };
const CANCEL: StatusAction = { status: "cancelled", label: "Cancel alert", note: true };

export function actionsFor(status: AlertStatus): StatusAction[] {
  switch (status) {
    case "dispatching":
      return [ESCALATE, CANCEL];
    case "escalated":
    case "assigned":
    case "en_route":
      return [CANCEL];
    case "on_scene":
      return [RESOLVE, CANCEL];
    case "resolved":
    case "cancelled":
      return [];
  }
}

/** Assigning (or reassigning) is possible until the alert is closed or the responder is there. */
export function canAssign(status: AlertStatus): boolean {
  return status === "dispatching" || status === "escalated" || status === "assigned" || status === "en_route";
}
