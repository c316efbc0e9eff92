// One WebSocket per app, as API.md's clients keep it: `auth` first, a ping
// every third of `auth.ok`'s heartbeat timeout (±10 %), reconnect with
// back-off (0.5 s doubling to 10 s, ±20 %), one refresh on 4401, and a
// resync callback after every (re)connect so nothing missed stays missing.
export interface Frame {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

export type Connection = "connecting" | "live" | "offline";

export interface SocketHooks {
  /** The access token; null once the session is over ("" while resuming offline). */
  token(): string | null;
  refresh(): Promise<boolean>;
  revoked(): void;
  frame(frame: Frame): void;
  connection(state: Connection): void;
  /** After every auth.ok: read state over REST, say the agent's status again... */
  opened(): void;
}

/** The server refused the token (API.md). */
export const CLOSE_UNAUTHORIZED = 4401;

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 10 s, ±20 %. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.round(Math.min(10_000, 500 * 2 ** Math.min(attempt, 10)) * (0.8 + 0.4 * random()));
}

/** Ping every third of the server's heartbeat timeout, ±10 %. */
export function pingEveryMs(heartbeatTimeoutS: number, random: () => number = Math.random): number {
  return Math.round((heartbeatTimeoutS * 1000 * (0.9 + 0.2 * random())) / 3);
}

export function parse(text: string): Frame | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return null;
    const { type, data } = value as { type?: unknown; data?: unknown };
    if (typeof type !== "string" || typeof data !== "object" || data === null) return null;
    return value as Frame;
  } catch {
    return null;
  }
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private running = false;
  private ping: ReturnType<typeof setInterval> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Set<(frame: Frame) => void>();

  constructor(private readonly hooks: SocketHooks) {}

  /** Hear every server frame too (after `hooks.frame`); returns the unsubscribe. */
  listen(listener: (frame: Frame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.retry);
    clearInterval(this.ping);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "signed out");
    this.hooks.connection("offline");
  }

  /** Send a frame now; false when the socket is not open (the caller may retry). */
  send(type: string, data: Record<string, unknown> = {}, id?: string): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(id === undefined ? { type, data } : { type, id, data }));
    return true;
  }

  private connect(): void {
    const token = this.hooks.token();
    if (!this.running) return;
    if (!token) {
      // No token yet (an offline start): try again once the session has one.
      this.later();
      return;
    }
    this.hooks.connection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", data: { token } }));
    ws.onmessage = (event: MessageEvent<unknown>) => {
      if (typeof event.data !== "string") return;
      const frame = parse(event.data);
      if (!frame) return;
      if (frame.type === "auth.ok") {
        this.attempt = 0;
        this.hooks.connection("live");
        clearInterval(this.ping);
        const timeout = Number(frame.data.heartbeat_timeout_s ?? 90);
        this.ping = setInterval(() => this.send("ping"), pingEveryMs(timeout));
        this.hooks.opened();
      }
      this.hooks.frame(frame);
      for (const listener of this.listeners) listener(frame);
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.ping);
      this.hooks.connection("offline");
      if (!this.running) return;
      if (event.code === CLOSE_UNAUTHORIZED) {
        // The token was refused: one refresh. A refusal of the refresh ends the
        // session; a refresh that could not reach the server (offline) does
        // not: try again later, as after any other close.
        void this.hooks.refresh().then((ok) => {
          if (ok) this.connect();
          else if (this.hooks.token() === null) this.hooks.revoked();
          else this.later();
        });
        return;
      }
      this.later();
    };
  }

  private later(): void {
    if (!this.running) return;
    this.hooks.connection("connecting");
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), backoffMs(this.attempt));
    this.attempt += 1;
  }
}
