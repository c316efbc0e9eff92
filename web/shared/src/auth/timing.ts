// When a session refreshes its tokens: the one policy of the console's session
// (console/src/features/auth/session.ts) and the phone apps' (./session.ts).

/** Refresh at three quarters of the access token's life (at least 5 s on). */
export function refreshDelayMs(expiresInS: number): number {
  return Math.max(5, expiresInS * 0.75) * 1000;
}

/** An access token this close to its expiry is refreshed before signing out with it. */
export const SIGN_OUT_MARGIN_MS = 30_000;

/** Whether to refresh before signing out: one is under way, or the token is near its expiry. */
export function refreshBeforeSignOut(refreshing: boolean, expiresAtMs: number, nowMs: number): boolean {
  return refreshing || nowMs > expiresAtMs - SIGN_OUT_MARGIN_MS;
}
