// What the person is told about their alert, in plain words (pure; tested).
import type { AlertStatus } from "@panic-alert/shared/api/types";

export function progressText(status: AlertStatus): string {
  switch (status) {
    case "dispatching":
    case "escalated":
      return "Looking for a responder";
    case "assigned":
    case "en_route":
      return "A responder is coming";
    case "on_scene":
      return "A responder is with you";
    case "resolved":
      return "Resolved";
    case "cancelled":
      return "Cancelled";
  }
}

/** A responder has the alert and is on the way or there. */
export function isResponding(status: AlertStatus): boolean {
  return status === "assigned" || status === "en_route" || status === "on_scene";
}

export function isOpen(status: AlertStatus): boolean {
  return status !== "resolved" && status !== "cancelled";
}

/** How long the panic button must be held (ms); two taps within TAP_WINDOW_MS also send. */
export const HOLD_MS = 1500;
export const TAP_WINDOW_MS = 1200;
