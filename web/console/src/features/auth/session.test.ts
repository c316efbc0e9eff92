// Signing out while the server closes the socket, against a fake /auth.
import { describe, expect, it, vi } from "vitest";

import { fakeAuthServer, fakeTimePerTest } from "@panic-alert/shared/auth/fakeAuthServer";

import { refresh, sessionRevoked, signIn, signOut, useSession } from "./session";

describe("signing out of the console", () => {
  fakeTimePerTest();

  it("starts no refresh while the logout is under way, and ignores the socket's 4401 meanwhile", async () => {
    const server = fakeAuthServer(900);
    vi.stubGlobal("fetch", server.fetch);
    await signIn("a@example.org", "pw");
    expect(useSession.getState().status).toBe("signed-in");

    const leaving = signOut();
    await vi.waitFor(() => expect(server.sent("/auth/logout")).toHaveLength(1));
    // The logout closed the socket (4401) before its answer came: the socket asks for a refresh.
    expect(await refresh()).toBe(false);
    sessionRevoked();
    expect(useSession.getState().status).toBe("signed-in");
    server.release();
    await leaving;

    expect(server.sent("/auth/refresh")).toEqual([]);
    expect(server.sent("/auth/logout")[0]?.authorization).toBe("Bearer access-1");
    expect(useSession.getState()).toMatchObject({ status: "signed-out", ended: null });
  });

  it("refreshes an access token near its expiry first, then logs out with the new one", async () => {
    const server = fakeAuthServer(60);
    vi.stubGlobal("fetch", server.fetch);
    await signIn("a@example.org", "pw");
    vi.setSystemTime(Date.now() + 45_000); // 15 s left: less than the margin
    const leaving = signOut();
    server.release();
    await leaving;

    expect(server.calls.slice(-2).map((call) => call.path)).toEqual(["/auth/refresh", "/auth/logout"]);
    expect(server.sent("/auth/logout")[0]?.authorization).toBe("Bearer access-2");
    expect(useSession.getState().status).toBe("signed-out");
  });
});
