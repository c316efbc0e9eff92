// A fake of the gateway's /auth endpoints for the session modules' unit tests
// (a fake fetch: the real server's side is tested in tests/integration/api/test_auth.py).
import { afterEach, beforeEach, vi } from "vitest";

export interface FakeCall {
  path: string;
  authorization: string | null;
}

const ME = { id: "a1", email: "a@example.org", full_name: "A", role: "admin", phone: null };

function json(status: number, body: unknown): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

/**
 * Sign-in, /auth/me and refresh answer at once, each pair numbered in turn
 * (`access-1`, `refresh-1`, ...); a logout is answered only after `release()`.
 */
export function fakeAuthServer(expiresIn: number) {
  const calls: FakeCall[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let issued = 0;
  // The client calls fetch with a path string.
  const fetch = vi.fn(async (path: string, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({ path, authorization: headers.Authorization ?? null });
    if (path.startsWith("/auth/login/") || path === "/auth/refresh") {
      issued += 1;
      const pair = { access_token: `access-${issued}`, refresh_token: `refresh-${issued}`, token_type: "bearer" };
      return json(200, { ...pair, expires_in: expiresIn });
    }
    if (path === "/auth/me") return json(200, ME);
    if (path === "/auth/logout") {
      await released;
      return json(204, null);
    }
    return json(404, { title: "Not Found" });
  });
  const sent = (path: string) => calls.filter((call) => call.path === path);
  return { calls, fetch, release, sent };
}

/** In the calling `describe`: fake timers and clock for each test, and the real ones
 * (and the real `fetch`) back after it. */
export function fakeTimePerTest(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
}
