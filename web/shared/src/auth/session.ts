// A signed-in session for the phone apps: the access token in memory, the
// refresh token in the encrypted vault (so a restart does not sign out),
// refreshed quietly at three quarters of the access token's life.
import { ApiError, request, setTokenSource } from "../api/client";
import type { Me, TokenPair } from "../api/types";
import { refreshBeforeSignOut, refreshDelayMs } from "./timing";
import { forgetRefreshToken, keepAccount, keepRefreshToken, readAccount, readRefreshToken } from "./vault";

export type Role = "user" | "agent";

export interface SessionEvents {
  /** Signed in (again), or signed out (`me` null) with a reason for the screen. */
  changed(me: Me | null, reason: string | null): void;
}

export class Session {
  private pair: TokenPair | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: Promise<boolean> | null = null;
  /** Resumed without the server: tell who it is once a refresh works. */
  private offline = false;
  /** When the access token expires (ms since the epoch, by this clock). */
  private expiresAt = 0;
  /** Signing out: no refresh may start (it would spend the refresh token the logout ends). */
  private leaving = false;

  constructor(
    private readonly role: Role,
    private readonly events: SessionEvents,
  ) {
    setTokenSource({ token: () => this.pair?.access_token ?? null, refresh: () => this.refresh() });
  }

  private hasPair(): boolean {
    return this.pair !== null;
  }

  accessToken(): string | null {
    return this.pair?.access_token ?? null;
  }

  private async keep(pair: TokenPair): Promise<void> {
    this.pair = pair;
    this.expiresAt = Date.now() + pair.expires_in * 1000;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), refreshDelayMs(pair.expires_in));
    await keepRefreshToken(this.role, pair.refresh_token);
  }

  private async whoAmI(): Promise<Me> {
    const me = await request<Me>("GET", "/auth/me");
    await keepAccount(this.role, me);
    this.events.changed(me, null);
    return me;
  }

  /** Sign in with the account's password; the answer's `me`. */
  async signIn(email: string, password: string): Promise<Me> {
    const pair = await request<TokenPair>("POST", `/auth/login/${this.role}`, {
      body: { email, password },
      anonymous: true,
    });
    await this.keep(pair);
    return this.whoAmI();
  }

  /**
   * After a restart: the kept refresh token, if it still works. Offline (the
   * server can't be reached, which is not a refusal) the kept account opens
   * the app at once; the refresh is retried until the network is back.
   */
  async resume(): Promise<Me | null> {
    const refreshToken = await readRefreshToken(this.role);
    if (!refreshToken) return null;
    this.pair = { access_token: "", refresh_token: refreshToken, token_type: "bearer", expires_in: 0 };
    this.offline = true;
    if (await this.refresh()) return this.whoAmI();
    if (!this.hasPair()) return null; // refused: signed out
    const kept = (await readAccount(this.role)) as Me | null;
    if (kept) this.events.changed(kept, null);
    return kept;
  }

  refresh(): Promise<boolean> {
    this.inflight ??= this.refreshOnce().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refreshOnce(): Promise<boolean> {
    const current = this.pair;
    if (!current || this.leaving) return false;
    try {
      await this.keep(
        await request<TokenPair>("POST", "/auth/refresh", {
          body: { refresh_token: current.refresh_token },
          anonymous: true,
        }),
      );
      if (this.offline) {
        this.offline = false;
        void this.whoAmI().catch(() => undefined);
      }
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        await this.forget("Your session ended. Sign in again.");
        return false;
      }
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), 10_000);
      return false;
    }
  }

  private async forget(reason: string | null): Promise<void> {
    this.pair = null;
    clearTimeout(this.timer);
    await forgetRefreshToken(this.role);
    this.events.changed(null, reason);
  }

  /**
   * End the session on the server too, then forget it. The logout closes this
   * session's socket with 4401, often before its answer arrives: no refresh
   * starts meanwhile, so a refresh under way is awaited and an access token
   * near its expiry is refreshed first.
   */
  async signOut(): Promise<void> {
    if (this.pair && refreshBeforeSignOut(this.inflight !== null, this.expiresAt, Date.now())) await this.refresh();
    const current = this.pair;
    if (current) {
      this.leaving = true;
      try {
        await request<undefined>("POST", "/auth/logout", { body: { refresh_token: current.refresh_token } });
      } catch {
        // Signing out on the phone must not depend on the network.
      } finally {
        this.leaving = false;
      }
    }
    await this.forget(null);
  }

  /** The server closed the socket with 4401 and no refresh helped. */
  async revoked(): Promise<void> {
    if (this.leaving) return; // signOut forgets it, with its own reason
    await this.forget("Your session was ended. Sign in again.");
  }
}
