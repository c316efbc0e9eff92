import { lazy, Suspense, useEffect, useRef } from "react";

import { SignIn } from "../features/auth/SignIn";
import { signOut, useSession } from "../features/auth/session";
import { AlertDetail } from "../features/alert/AlertDetail";
import { LiveMap } from "../features/map/LiveMap";
import { AlertQueue } from "../features/queue/AlertQueue";
import { Responders } from "../features/responders/Responders";
import { enableDesktop, useAlerting } from "./alerting";
import { useLive } from "./live";
import { type Page, useUi } from "./ui";

const Zones = lazy(() => import("../features/zones/Zones").then((m) => ({ default: m.Zones })));
const Analytics = lazy(() => import("../features/analytics/Analytics").then((m) => ({ default: m.Analytics })));

const PAGES: readonly { page: Page; label: string }[] = [
  { page: "live", label: "Live" },
  { page: "responders", label: "Responders" },
  { page: "zones", label: "Zones" },
  { page: "analytics", label: "Analytics" },
];

const CONNECTION_LABEL = { live: "Live", connecting: "Reconnecting…", offline: "Offline" } as const;

/** The polite live region the queue announces new and escalated alerts through. */
function Announcer() {
  const announcement = useLive((s) => s.announcement);
  return (
    <div role="status" aria-live="polite" className="sr-only" data-testid="announcer">
      {announcement?.text ?? ""}
    </div>
  );
}

function Header() {
  const me = useSession((s) => s.me);
  const page = useUi((s) => s.page);
  const connection = useLive((s) => s.connection);
  const { sound, desktop } = useAlerting();
  return (
    <header className="top">
      <strong className="brand">Panic Alert</strong>
      <nav aria-label="Console">
        {PAGES.map((p) => (
          <button
            key={p.page}
            type="button"
            aria-current={page === p.page ? "page" : undefined}
            onClick={() => useUi.setState({ page: p.page })}
          >
            {p.label}
          </button>
        ))}
      </nav>
      <span className={`connection ${connection}`} role="status">
        {CONNECTION_LABEL[connection]}
      </span>
      <label className="toggle">
        <input type="checkbox" checked={sound} onChange={(e) => useAlerting.setState({ sound: e.target.checked })} />
        Sound
      </label>
      <label className="toggle">
        <input
          type="checkbox"
          checked={desktop}
          onChange={(e) => (e.target.checked ? void enableDesktop() : useAlerting.setState({ desktop: false }))}
        />
        Desktop notifications
      </label>
      <span className="me">{me?.full_name}</span>
      <button type="button" onClick={() => void signOut()}>
        Sign out
      </button>
    </header>
  );
}

function LiveView() {
  const selected = useUi((s) => s.selectedAlertId);
  return (
    <main className="live-view">
      <h1 className="sr-only">Live operation</h1>
      <AlertQueue />
      <LiveMap />
      {selected && <AlertDetail key={selected} alertId={selected} />}
    </main>
  );
}

export function App() {
  const status = useSession((s) => s.status);
  const page = useUi((s) => s.page);
  const mainRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    mainRef.current?.querySelector("h1")?.focus();
  }, [page]);
  if (status !== "signed-in") return <SignIn />;
  return (
    <div className="shell" ref={mainRef}>
      <a href="#content" className="skip">
        Skip to content
      </a>
      <Header />
      <Announcer />
      <div id="content">
        {page === "live" && <LiveView />}
        {page === "responders" && <Responders />}
        <Suspense fallback={<p>Loading…</p>}>
          {page === "zones" && <Zones />}
          {page === "analytics" && <Analytics />}
        </Suspense>
      </div>
    </div>
  );
}
