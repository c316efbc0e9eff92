// The signed-in session: tokens live in this module's memory only (never in
// localStorage or a cookie), are refreshed quietly before they expire, and
// are forgotten on sign-out (which also closes the socket: app/socket.ts
// listens to the status).
import { create } from "zustand";

import { ApiError, request, setTokenSource } from "@panic-alert/shared/api/client";
import type { Me, TokenPair } from "@panic-alert/shared/api/types";
import { refreshBeforeSignOut, refreshDelayMs } from "@panic-alert/shared/auth/timing";

export type SessionStatus = "signed-out" | "signed-in";

interface SessionState {
  status: SessionStatus;
  me: Me | null;
  /** Why the last session ended, shown on the sign-in page. */
  ended: string | null;
}

export const useSession = create<SessionState>(() => ({ status: "signed-out", me: null, ended: null }));

let pair: TokenPair | null = null;
/** When the access token expires (ms since the epoch, by this clock). */
let expiresAt = 0;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<boolean> | null = null;
/** Signing out: no refresh may start (it would spend the refresh token the logout ends). */
let leaving = false;

function keep(next: TokenPair): void {
  pair = next;
  expiresAt = Date.now() + next.expires_in * 1000;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), refreshDelayMs(next.expires_in));
}

function forget(reason: string | null): void {
  pair = null;
  clearTimeout(refreshTimer);
  useSession.setState({ status: "signed-out", me: null, ended: reason });
}

async function refreshOnce(): Promise<boolean> {
  const current = pair;
  if (!current || leaving) return false;
  try {
    const next = await request<TokenPair>("POST", "/auth/refresh", {
      body: { refresh_token: current.refresh_token },
      anonymous: true,
    });
    keep(next);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forget("Your session ended. Sign in again.");
      return false;
    }
    // The server could not be reached: keep the tokens and try again later.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => void refresh(), 10_000);
    return false;
  }
}

/** Refresh the session; concurrent callers share one request. */
export function refresh(): Promise<boolean> {
  inflight ??= refreshOnce().finally(() => {
    inflight = null;
  });
  return inflight;
}

setTokenSource({ token: () => pair?.access_token ?? null, refresh });

export function accessToken(): string | null {
  return pair?.access_token ?? null;
}

export class NotAnAdmin extends Error {}

/**
 * Sign in as an administrator. `totpCode` is sent when the server asked for
 * the second factor (ApiError kind "totp-required").
 */
export async function signIn(email: string, password: string, totpCode?: string): Promise<void> {
  const body: Record<string, string> = { email, password };
  if (totpCode) body.totp_code = totpCode;
  const next = await request<TokenPair>("POST", "/auth/login/user", { body, anonymous: true });
  keep(next);
  const me = await request<Me>("GET", "/auth/me");
  if (me.role !== "admin") {
    await signOut(null);
    throw new NotAnAdmin("This console is for administrators.");
  }
  useSession.setState({ status: "signed-in", me, ended: null });
}

/**
 * End the session on the server too (its tokens stop working), then forget it.
 * The logout closes this session's socket with 4401, often before its answer
 * arrives: no refresh starts meanwhile, so a refresh under way is awaited
 * and an access token near its expiry is refreshed first.
 */
export async function signOut(reason: string | null = null): Promise<void> {
  if (pair && refreshBeforeSignOut(inflight !== null, expiresAt, Date.now())) await refresh();
  const current = pair;
  if (current) {
    leaving = true;
    try {
      await request<undefined>("POST", "/auth/logout", { body: { refresh_token: current.refresh_token } });
    } catch {
      // Signing out locally must not depend on the network.
    } finally {
      leaving = false;
    }
  }
  forget(reason);
}

/** The socket was closed with 4401: the session is over on the server. */
export function sessionRevoked(): void {
  if (leaving) return; // signOut forgets it, with its own reason
  forget("Your session was ended by the server. Sign in again.");
}
