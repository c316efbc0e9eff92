import { ApiError, api, request } from "@panic-alert/shared/api/client";
import type { Alert, AlertPage, AlertType, Me } from "@panic-alert/shared/api/types";
import type { Session } from "@panic-alert/shared/auth/session";
import { DEFAULTS, loadConfig } from "@panic-alert/shared/config";
import { useSession } from "@panic-alert/shared/auth/useSession";
import type { Eta, LivePosition } from "@panic-alert/shared/live/alertFrames";
import { type Point, distanceText, etaText, metresBetween, worthSending } from "@panic-alert/shared/live/position";
import { disablePush } from "@panic-alert/shared/live/push";
import { type Connection, type Frame, LiveSocket } from "@panic-alert/shared/live/socket";
import { Chat, useChat } from "@panic-alert/shared/ui/Chat";
import { PushToggle } from "@panic-alert/shared/ui/PushToggle";
import { ResponseMap } from "@panic-alert/shared/ui/ResponseMap";
import { type SubmitEvent, useCallback, useEffect, useMemo, useState } from "react";

import { type PendingPress, clearPress, keepPress, pendingPress } from "./outbox";
import { PanicButton } from "./PanicButton";
import { Attachments } from "./media/Attachments";
import { More } from "./More";
import { isOpen, isResponding, progressText } from "./progress";
import { DangerZoneWarnings, useDangerZones } from "./zones/DangerZone";

const TYPES: readonly AlertType[] = ["panic", "medical", "fire", "security", "other"];

function message(caught: unknown, fallback: string): string {
  return caught instanceof ApiError ? caught.message : fallback;
}

/** A tel: link to the local emergency number (the gateway's `console.emergency_number`). */
function CallEmergency() {
  const [number, setNumber] = useState(DEFAULTS.emergency_number);
  useEffect(() => {
    let current = true;
    void loadConfig().then((config) => current && setNumber(config.emergency_number));
    return () => {
      current = false;
    };
  }, []);
  return <a href={`tel:${number}`}>Call {number}</a>;
}

function position(): Promise<GeolocationPosition> {
  return new Promise((resolve, reject) =>
    navigator.geolocation.getCurrentPosition(resolve, reject, {
      enableHighAccuracy: true,
      timeout: 10_000,
      maximumAge: 30_000,
    }),
  );
}

function SignIn({ session, ended }: { session: Session; ended: string | null }) {
  const [mode, setMode] = useState<"in" | "up">("in");
  const [fullName, setFullName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "up") {
        await api.post("/auth/register/user", { email, password, full_name: fullName });
      }
      await session.signIn(email, password);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 401) setError("Wrong email or password.");
      else if (caught instanceof ApiError && caught.status === 409) setError("That email has an account: sign in.");
      else setError(message(caught, "The server could not be reached. Try again."));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="card">
      <h1>Panic Alert</h1>
      {ended && <p role="status">{ended}</p>}
      <form onSubmit={(e) => void submit(e)}>
        <h2>{mode === "in" ? "Sign in" : "Create an account"}</h2>
        {mode === "up" && (
          <label>
            Full name
            <input required autoComplete="name" value={fullName} onChange={(e) => setFullName(e.target.value)} />
          </label>
        )}
        <label>
          Email
          <input type="email" required autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            required
            minLength={12}
            autoComplete={mode === "in" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {mode === "in" ? "Sign in" : "Create account"}
        </button>
      </form>
      <button type="button" className="link" onClick={() => setMode(mode === "in" ? "up" : "in")}>
        {mode === "in" ? "New here? Create an account" : "I have an account: sign in"}
      </button>
    </main>
  );
}

function CancelForm({ alert, onDone }: { alert: Alert; onDone: (a: Alert) => void }) {
  const [asking, setAsking] = useState(false);
  const [pin, setPin] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function cancel(withPin: string | null) {
    setError(null);
    try {
      onDone(await api.put<Alert>(`/alerts/${alert.id}/status`, { status: "cancelled", pin: withPin }));
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 403) {
        setAsking(true);
        setError(withPin ? "That PIN was not accepted." : "Enter your PIN to cancel.");
      } else setError(message(caught, "The alert could not be cancelled. Try again."));
    }
  }

  return (
    <div className="cancel">
      {!asking && (
        <button type="button" className="secondary" onClick={() => void cancel(null)}>
          Cancel alert
        </button>
      )}
      {asking && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void cancel(pin);
          }}
        >
          <label>
            PIN
            <input inputMode="numeric" autoComplete="off" required value={pin} onChange={(e) => setPin(e.target.value)} />
          </label>
          <button type="submit" className="secondary">
            Cancel alert
          </button>
        </form>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}

function Home({ me, session }: { me: Me; session: Session }) {
  const [alert, setAlert] = useState<Alert | null>(null);
  const [type, setType] = useState<AlertType>("panic");
  const [silent, setSilent] = useState(false);
  const [note, setNote] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [connection, setConnection] = useState<Connection>("offline");
  const [waiting, setWaiting] = useState(false);
  // During a response: the responder's last position and arrival estimate, and mine.
  const [responder, setResponder] = useState<LivePosition | null>(null);
  const [eta, setEta] = useState<Eta | null>(null);
  const [here, setHere] = useState<Point | null>(null);
  const zones = useDangerZones();
  const zoneFrame = zones.onFrame;

  const socket = useMemo(
    () =>
      new LiveSocket({
        token: () => session.accessToken(),
        refresh: () => session.refresh(),
        revoked: () => void session.revoked(),
        connection: setConnection,
        opened: () => {
          // Catch up: the newest alert of mine, if it is still open.
          api
            .get<AlertPage>("/alerts", { limit: 1 })
            .then((page) => {
              const latest = page.items[0];
              setAlert((current) => (latest && (isOpen(latest.status) || current?.id === latest.id) ? latest : current));
            })
            .catch(() => undefined);
        },
        frame: (frame: Frame) => {
          zoneFrame(frame); // geofence.alert: a danger-zone warning
          if (frame.type === "agent.location") setResponder(frame.data as unknown as LivePosition);
          else if (frame.type === "alert.eta") setEta(frame.data as unknown as Eta);
          if (frame.type !== "alert.updated") return;
          const data = frame.data as { alert_id: string; status: Alert["status"]; assigned_agent_id?: string };
          setAlert((current) =>
            current?.id === data.alert_id
              ? { ...current, status: data.status, assigned_agent_id: data.assigned_agent_id ?? current.assigned_agent_id }
              : current,
          );
        },
      }),
    [session, zoneFrame],
  );
  useEffect(() => {
    socket.start();
    return () => socket.stop();
  }, [socket]);

  const alertId = alert !== null && isOpen(alert.status) ? alert.id : null;
  const chat = useChat(alert?.silent ? null : alertId, socket);

  // While an alert is open my position follows me to the responder, and while a
  // check-in runs it goes to my check-in and the danger zones (only when I
  // moved: the battery). Otherwise the app shares no position.
  const [checkingIn, setCheckingIn] = useState(false);
  const sharing = alertId !== null || checkingIn;
  useEffect(() => {
    if (!sharing || !("geolocation" in navigator)) return;
    let last: (Point & { at: number }) | null = null;
    const watch = navigator.geolocation.watchPosition(
      (fix) => {
        const next = { latitude: fix.coords.latitude, longitude: fix.coords.longitude, at: Date.now() };
        setHere(next);
        if (!worthSending(last, next)) return;
        const sent = socket.send("location", {
          latitude: next.latitude,
          longitude: next.longitude,
          accuracy_m: fix.coords.accuracy,
        });
        if (sent) last = next;
      },
      () => undefined,
      { enableHighAccuracy: true, maximumAge: 5000 },
    );
    return () => navigator.geolocation.clearWatch(watch);
  }, [sharing, socket]);

  /** Deliver the kept press; true once the server has it (or refused it for good). */
  const deliver = useCallback(async (press: PendingPress): Promise<boolean> => {
    try {
      const created = await request<Alert>("POST", "/alerts", {
        body: press.body,
        headers: { "Idempotency-Key": press.idempotencyKey },
      });
      await clearPress();
      setWaiting(false);
      setAlert(created);
      return true;
    } catch (caught) {
      if (caught instanceof ApiError && caught.status < 500 && caught.status !== 429 && caught.status !== 401) {
        await clearPress();
        setWaiting(false);
        setError(message(caught, "The alert was refused. Call the emergency number."));
        return true;
      }
      // No network, or the server is busy: keep it and say so.
      setWaiting(true);
      return false;
    }
  }, []);

  // A kept press goes out when the network is back (and is retried meanwhile).
  useEffect(() => {
    let stopped = false;
    const retry = () =>
      void pendingPress().then((press) => {
        if (press && !stopped) void deliver(press);
      });
    retry();
    window.addEventListener("online", retry);
    const timer = setInterval(retry, 5000);
    return () => {
      stopped = true;
      window.removeEventListener("online", retry);
      clearInterval(timer);
    };
  }, [deliver]);

  async function send() {
    setSending(true);
    setError(null);
    try {
      const where = await position();
      const press: PendingPress = {
        idempotencyKey: crypto.randomUUID(),
        pressedAt: new Date().toISOString(),
        body: {
          latitude: where.coords.latitude,
          longitude: where.coords.longitude,
          accuracy_m: where.coords.accuracy,
          alert_type: type,
          silent,
          description: note.trim() || null,
        },
      };
      await keepPress(press);
      await deliver(press);
    } catch (caught) {
      setError(
        caught instanceof GeolocationPositionError
          ? "Your position could not be read. Allow location, or call the emergency number."
          : message(caught, "The alert could not be sent. Call the emergency number."),
      );
    } finally {
      setSending(false);
    }
  }

  const open = alert !== null && isOpen(alert.status);
  const following = open && !alert.silent && isResponding(alert.status);
  const person: Point | null = here ?? (alert ? { latitude: alert.latitude, longitude: alert.longitude } : null);
  const coming = following && responder?.alert_id === alert.id ? responder : null;
  const arrival = following && eta?.alert_id === alert.id ? eta : null;
  return (
    <main className="home">
      <header>
        <span>{me.full_name}</span>
        <span className={`connection ${connection}`}>{connection === "live" ? "Connected" : "Connecting…"}</span>
        <button type="button" className="link" onClick={() => void disablePush().then(() => session.signOut())}>
          Sign out
        </button>
      </header>
      <h1 className="sr-only">Panic Alert</h1>
      <DangerZoneWarnings zones={zones} />
      <section role="status" aria-live="polite" aria-label="Alert status" className="status">
        {waiting ? (
          <>
            <strong>Still sending your alert</strong>
            <span className="detail">No network: it goes out as soon as this phone is online.</span>
          </>
        ) : alert ? (
          <>
            <strong>{progressText(alert.status)}</strong>
            {arrival && alert.status !== "on_scene" ? (
              <span className="detail">
                {etaText(arrival.eta_s)} ({distanceText(arrival.distance_m)})
              </span>
            ) : sending ? null : (
              <span className="detail">{alert.alert_type} alert sent</span>
            )}
          </>
        ) : sending ? (
          "Sending your alert…"
        ) : (
          "No alert"
        )}
      </section>
      {waiting && (
        <p className="fallback">
          <CallEmergency /> if you can.
        </p>
      )}
      {!open && !waiting && (
        <>
          <PanicButton onSend={() => void send()} disabled={sending} />
          <fieldset className="options">
            <legend>Options</legend>
            <label>
              Type
              <select value={type} onChange={(e) => setType(e.target.value as AlertType)}>
                {TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            <label className="check">
              <input type="checkbox" checked={silent} onChange={(e) => setSilent(e.target.checked)} />
              Silent (no sound on this phone)
            </label>
            <label>
              Note for the responder
              <input maxLength={500} value={note} onChange={(e) => setNote(e.target.value)} />
            </label>
          </fieldset>
        </>
      )}
      {following && (
        <section aria-labelledby="coming-title" className="coming">
          <h2 id="coming-title">Your responder</h2>
          <ResponseMap person={person} responder={coming} label="Map of your responder" />
          <p>
            {coming && person
              ? `Your responder is ${distanceText(metresBetween(coming, person))}.`
              : "Your responder's position shows here when their phone shares it."}
          </p>
        </section>
      )}
      {open && !alert.silent && <Chat chat={chat} me="user" />}
      {open && <CancelForm alert={alert} onDone={setAlert} />}
      {open && <Attachments alertId={alert.id} session={session} />}
      {error && (
        <p role="alert" className="error">
          {error} <CallEmergency />
        </p>
      )}
      <More onCheckIn={setCheckingIn} />
      <PushToggle />
    </main>
  );
}

export function App() {
  const { session, me, ended, ready } = useSession("user");
  if (!ready) return <p className="card">Loading…</p>;
  return me ? <Home me={me} session={session} /> : <SignIn session={session} ended={ended} />;
}
