// Web push for an app that is not open (the gateway pushes offers to
// responders and status changes to people when no socket of theirs is
// open): subscribe this browser with the server's VAPID key and register it
// (`POST /users/devices`); forget it on sign-out. The service worker
// (pwa/shell-sw.js) shows what arrives.
import { ApiError, api } from "../api/client";

const KEPT = "panic-alert-push-device";

export type PushOutcome = "on" | "denied" | "unsupported" | "failed";

/** base64url → the bytes PushManager.subscribe wants. */
export function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const base64 = base64url.replaceAll("-", "+").replaceAll("_", "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const raw = atob(padded);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function pushSupported(): boolean {
  return typeof window !== "undefined" && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** Ask (from a user gesture), subscribe and register this browser; what came of it. */
export async function enablePush(): Promise<PushOutcome> {
  if (!pushSupported()) return "unsupported";
  if ((await Notification.requestPermission()) !== "granted") return "denied";
  try {
    const registration = await navigator.serviceWorker.ready;
    const { public_key } = await api.get<{ public_key: string }>("/users/devices/vapid-public-key");
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(public_key),
    });
    const device = await api.post<{ id: string }>("/users/devices", {
      platform: "web",
      push_token: JSON.stringify(subscription),
    });
    localStorage.setItem(KEPT, device.id);
    return "on";
  } catch (caught) {
    // No push service (a browser without one, offline) or the server refused.
    if (caught instanceof ApiError) console.warn(caught.message);
    return "failed";
  }
}

/** On sign-out: the server forgets this device and the browser its subscription. */
export async function disablePush(): Promise<void> {
  const id = localStorage.getItem(KEPT);
  localStorage.removeItem(KEPT);
  try {
    if (id) await api.del(`/users/devices/${id}`);
    if (pushSupported()) {
      const registration = await navigator.serviceWorker.getRegistration();
      await (await registration?.pushManager.getSubscription())?.unsubscribe();
    }
  } catch {
    // Signing out must not depend on the network.
  }
}

export function pushOutcomeText(outcome: PushOutcome): string {
  switch (outcome) {
    case "on":
      return "Notifications are on for this device.";
    case "denied":
      return "Notifications are blocked: allow them in the browser's settings.";
    case "unsupported":
      return "This browser cannot show notifications when the app is closed.";
    case "failed":
      return "Notifications could not be turned on here. Keep the app open to be alerted.";
  }
}
