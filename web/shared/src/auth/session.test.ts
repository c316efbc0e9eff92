// The phone apps' session signing out while the server closes the socket,
// against a fake /auth and a fake vault (in memory).
import { beforeEach, describe, expect, it, vi } from "vitest";

import { fakeAuthServer, fakeTimePerTest } from "./fakeAuthServer";
import { Session } from "./session";

const kept = new Map<string, unknown>();

vi.mock("./vault", () => ({
  keepRefreshToken: (app: string, token: string) => Promise.resolve(void kept.set(`refresh:${app}`, token)),
  readRefreshToken: (app: string) => Promise.resolve(kept.get(`refresh:${app}`) ?? null),
  forgetRefreshToken: (app: string) => Promise.resolve(void kept.delete(`refresh:${app}`)),
  keepAccount: (app: string, account: unknown) => Promise.resolve(void kept.set(`account:${app}`, account)),
  readAccount: (app: string) => Promise.resolve(kept.get(`account:${app}`) ?? null),
}));

function session() {
  const changes: { signedIn: boolean; reason: string | null }[] = [];
  const made = new Session("user", { changed: (me, reason) => changes.push({ signedIn: me !== null, reason }) });
  return { made, changes };
}

describe("signing out of a phone app", () => {
  fakeTimePerTest();
  beforeEach(() => {
    kept.clear();
  });

  it("starts no refresh while the logout is under way, and ignores the socket's 4401 meanwhile", async () => {
    const server = fakeAuthServer(900);
    vi.stubGlobal("fetch", server.fetch);
    const { made, changes } = session();
    await made.signIn("a@example.org", "pw");

    const leaving = made.signOut();
    await vi.waitFor(() => expect(server.sent("/auth/logout")).toHaveLength(1));
    expect(await made.refresh()).toBe(false);
    await made.revoked();
    expect(changes.at(-1)).toEqual({ signedIn: true, reason: null });
    server.release();
    await leaving;

    expect(server.sent("/auth/refresh")).toEqual([]);
    expect(server.sent("/auth/logout")[0]?.authorization).toBe("Bearer access-1");
    expect(changes.at(-1)).toEqual({ signedIn: false, reason: null });
    expect(kept.has("refresh:user")).toBe(false);
  });

  it("refreshes an access token near its expiry first, then logs out with the new one", async () => {
    const server = fakeAuthServer(60);
    vi.stubGlobal("fetch", server.fetch);
    const { made } = session();
    await made.signIn("a@example.org", "pw");
    vi.setSystemTime(Date.now() + 45_000);
    const leaving = made.signOut();
    server.release();
    await leaving;

    expect(server.calls.slice(-2).map((call) => call.path)).toEqual(["/auth/refresh", "/auth/logout"]);
    expect(server.sent("/auth/logout")[0]?.authorization).toBe("Bearer access-2");
  });
});
