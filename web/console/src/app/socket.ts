// The one WebSocket of the page: authenticates, pings, reconnects with
// back-off, and resynchronises the store from REST after every (re)connect
// (so nothing missed while it was closed stays missing). Frames go to the
// store (app/live.ts); new and escalated alerts are announced.
import { api } from "@panic-alert/shared/api/client";
import type { AdminAlert, AlertPage, AlertStatus, FleetPage } from "@panic-alert/shared/api/types";
import { accessToken, refresh, sessionRevoked, useSession } from "../features/auth/session";
import { alertSignal } from "./alerting";
import { CLOSE_UNAUTHORIZED, type ServerFrame, backoffMs, parseFrame, pingEveryMs } from "./frames";
import { announce, live, useLive } from "./live";
import { OPEN_STATUSES, isOpen } from "./model";
import { describeAlert } from "./naming";

let socket: WebSocket | null = null;
let attempt = 0;
let pingTimer: ReturnType<typeof setInterval> | undefined;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let running = false;

function socketUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws`;
}

async function openAlerts(): Promise<AdminAlert[]> {
  const all: AdminAlert[] = [];
  for (const status of OPEN_STATUSES) {
    let cursor: string | null = null;
    for (let page = 0; page < 20; page += 1) {
      const answer: AlertPage = await api.get<AlertPage>("/alerts", { status, limit: 100, cursor });
      all.push(...answer.items);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
  }
  return all;
}

async function resync(): Promise<void> {
  const since = Date.now();
  const [alerts, agents] = await Promise.all([
    openAlerts(),
    api.get<FleetPage>("/admin/fleet").then(
      (answer) => answer.items,
      () => null,
    ),
  ]);
  live.resynced(alerts, agents, since);
}

function handle(frame: ServerFrame): void {
  switch (frame.type) {
    case "auth.ok": {
      attempt = 0;
      live.setConnection("live");
      clearInterval(pingTimer);
      const every = pingEveryMs(frame.data.heartbeat_timeout_s);
      pingTimer = setInterval(() => socket?.send(JSON.stringify({ type: "ping", data: {} })), every);
      resync().catch(() => socket?.close());
      return;
    }
    case "alert.created": {
      // The frame types status and alert_type as plain strings; they are the alert's enums.
      const alert = { ...frame.data, id: frame.data.alert_id } as AdminAlert;
      const known = useLive.getState().alerts[alert.id];
      live.alert(alert);
      if (!known) {
        announce(`New ${describeAlert(alert)}`);
        alertSignal(`New ${alert.alert_type} alert`, describeAlert(alert));
      }
      return;
    }
    case "alert.updated": {
      const { alert_id: alertId, ...rest } = frame.data;
      const known = useLive.getState().alerts[alertId];
      if (!known && isOpen(frame.data.status)) {
        api.get<AdminAlert>(`/alerts/${alertId}`).then((alert) => live.alert(alert), () => undefined);
        return;
      }
      live.patch(alertId, rest);
      if (known && frame.data.status === "escalated" && known.status !== "escalated") {
        announce(`Escalated ${describeAlert({ ...known, status: "escalated" })}`);
        alertSignal(`Escalated ${known.alert_type} alert`, describeAlert(known));
      }
      return;
    }
    case "alert.escalated": {
      const known = useLive.getState().alerts[frame.data.alert_id];
      live.patch(frame.data.alert_id, { status: frame.data.status as AlertStatus });
      if (known) {
        announce(`Escalated ${describeAlert({ ...known, status: "escalated" })}`);
        alertSignal(`Escalated ${known.alert_type} alert`, describeAlert(known));
      } else {
        api.get<AdminAlert>(`/alerts/${frame.data.alert_id}`).then((alert) => live.alert(alert), () => undefined);
      }
      return;
    }
    case "alert.location":
      live.userPosition(
        frame.data.alert_id,
        frame.data.latitude,
        frame.data.longitude,
        frame.data.at ?? null,
      );
      return;
    case "fleet.agents":
      live.fleet(frame.data.agents);
      return;
    case "media.added":
    case "alert.message":
      live.touched(frame.data.alert_id);
      return;
    case "alert.eta":
      // The timeline keeps the estimates that changed; the detail re-reads it then.
      return;
    case "pong":
    case "error":
      return;
  }
}

function scheduleReconnect(): void {
  if (!running) return;
  live.setConnection("connecting");
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, backoffMs(attempt));
  attempt += 1;
}

function connect(): void {
  const token = accessToken();
  if (!running || !token) return;
  live.setConnection("connecting");
  const ws = new WebSocket(socketUrl());
  socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", data: { token } }));
  ws.onmessage = (event: MessageEvent<unknown>) => {
    if (typeof event.data !== "string") return;
    const frame = parseFrame(event.data);
    if (frame) handle(frame);
  };
  ws.onclose = (event: CloseEvent) => {
    if (socket !== ws) return;
    socket = null;
    clearInterval(pingTimer);
    live.setConnection("offline");
    if (!running) return;
    if (event.code === CLOSE_UNAUTHORIZED) {
      // An expired token gets one refresh; a revoked session ends here. A
      // refresh that could not reach the server keeps the session: retry later.
      void refresh().then((ok) => {
        if (ok) connect();
        else if (accessToken() === null) sessionRevoked();
        else scheduleReconnect();
      });
      return;
    }
    scheduleReconnect();
  };
}

export function startSocket(): void {
  if (running) return;
  running = true;
  attempt = 0;
  connect();
}

export function stopSocket(): void {
  running = false;
  clearTimeout(retryTimer);
  clearInterval(pingTimer);
  const ws = socket;
  socket = null;
  ws?.close(1000, "signed out");
  live.clear();
}

// Signing out (or the session ending) closes the socket.
useSession.subscribe((state, previous) => {
  if (state.status === previous.status) return;
  if (state.status === "signed-in") startSocket();
  else stopSocket();
});
