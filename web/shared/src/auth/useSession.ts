// The phone apps' session as React state: resumed from the vault at start,
// then whoever is signed in (`me`), or why the last session ended.
import { useEffect, useMemo, useState } from "react";

import type { Me } from "../api/types";
import { type Role, Session } from "./session";

export interface SessionState {
  session: Session;
  me: Me | null;
  ended: string | null;
  /** False until the kept session was tried. */
  ready: boolean;
}

export function useSession(role: Role): SessionState {
  const [me, setMe] = useState<Me | null>(null);
  const [ended, setEnded] = useState<string | null>(null);
  const [ready, setReady] = useState(false);
  const session = useMemo(
    () =>
      new Session(role, {
        changed: (who, reason) => {
          setMe(who);
          setEnded(reason);
        },
      }),
    [role],
  );
  useEffect(() => {
    void session
      .resume()
      .catch(() => null)
      .finally(() => setReady(true));
  }, [session]);
  return { session, me, ended, ready };
}
