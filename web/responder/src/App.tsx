import { ApiError, api } from "@panic-alert/shared/api/client";
import type { Alert, Me } from "@panic-alert/shared/api/types";
import type { Session } from "@panic-alert/shared/auth/session";
import { useSession } from "@panic-alert/shared/auth/useSession";
import type { Eta, LivePosition } from "@panic-alert/shared/live/alertFrames";
import { type Point, distanceText, etaText, worthSending } from "@panic-alert/shared/live/position";
import { disablePush } from "@panic-alert/shared/live/push";
import { type Connection, type Frame, LiveSocket } from "@panic-alert/shared/live/socket";
import { Chat, useChat } from "@panic-alert/shared/ui/Chat";
import { Evidence } from "@panic-alert/shared/ui/Evidence";
import { PushToggle } from "@panic-alert/shared/ui/PushToggle";
import { ResponseMap } from "@panic-alert/shared/ui/ResponseMap";
import { type SubmitEvent, useCallback, useEffect, useRef, useState } from "react";

import { secondsLeft } from "./offer";
import { startRinging, stopRinging } from "./ring";

interface Offer {
  alert_id: string;
  alert_type: string;
  distance_m: number;
  expires_at: string;
}

type Progress = "en_route" | "on_scene" | "resolved";
const STEPS: readonly { status: Progress; label: string }[] = [
  { status: "en_route", label: "En route" },
  { status: "on_scene", label: "On scene" },
  { status: "resolved", label: "Resolved" },
];

function SignIn({ session, ended }: { session: Session; ended: string | null }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    try {
      await session.signIn(email, password);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 401) setError("Wrong email or password.");
      else if (caught instanceof ApiError && caught.status === 403) setError("This responder account is suspended.");
      else setError("The server could not be reached. Try again.");
    }
  }
  return (
    <main className="card">
      <h1>Panic Alert responder</h1>
      {ended && <p role="status">{ended}</p>}
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input type="email" required autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" required autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function IncomingDialog({ offer, onAnswer }: { offer: Offer; onAnswer: (accept: boolean) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    dialog.current?.showModal();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(tick);
  }, []);
  return (
    <dialog ref={dialog} aria-labelledby="incoming-title" onCancel={(e) => e.preventDefault()} className="incoming">
      <h2 id="incoming-title">Incoming alert</h2>
      <p className="big">{offer.alert_type}</p>
      <p>{distanceText(offer.distance_m)}</p>
      <p>{secondsLeft(offer.expires_at, now)} s to answer</p>
      <div className="actions">
        <button type="button" className="accept" autoFocus onClick={() => onAnswer(true)}>
          Accept
        </button>
        <button type="button" className="decline" onClick={() => onAnswer(false)}>
          Decline
        </button>
      </div>
    </dialog>
  );
}

function Duty({ me, session }: { me: Me; session: Session }) {
  const [onDuty, setOnDuty] = useState(false);
  const [connection, setConnection] = useState<Connection>("offline");
  const [offer, setOffer] = useState<Offer | null>(null);
  const [current, setCurrent] = useState<Alert | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // During a response: the person's live position, mine, the estimate, the media's version.
  const [person, setPerson] = useState<LivePosition | null>(null);
  const [here, setHere] = useState<Point | null>(null);
  const [eta, setEta] = useState<Eta | null>(null);
  const [mediaVersion, setMediaVersion] = useState(0);
  const [socket, setSocket] = useState<LiveSocket | null>(null);
  const duty = useRef(false);
  const lastSent = useRef<{ latitude: number; longitude: number; at: number } | null>(null);

  const socketRef = useRef<LiveSocket | null>(null);

  /** Show my fix; send it when it moved enough or is old (the battery), or when `now`. */
  const shareFix = useCallback((fix: GeolocationPosition, now = false) => {
    const next = { latitude: fix.coords.latitude, longitude: fix.coords.longitude, at: Date.now() };
    setHere(next);
    if (!now && !worthSending(lastSent.current, next)) return;
    const sent = socketRef.current?.send("location", {
      latitude: next.latitude,
      longitude: next.longitude,
      accuracy_m: fix.coords.accuracy,
      heading: fix.coords.heading,
      speed_mps: fix.coords.speed,
    });
    if (sent) lastSent.current = next;
  }, []);

  useEffect(() => {
    const live: LiveSocket = new LiveSocket({
      token: () => session.accessToken(),
      refresh: () => session.refresh(),
      revoked: () => void session.revoked(),
      connection: setConnection,
      opened: () => {
        // After every (re)connect the server hears the duty status again.
        if (duty.current) live.send("agent.status", { status: "available" }, "duty");
        lastSent.current = null;
      },
      frame: (frame: Frame) => {
        const data = frame.data;
        if (frame.type === "alert.offer") {
          const incoming = data as unknown as Offer;
          live.send("offer.received", { alert_id: incoming.alert_id });
          setOffer(incoming);
          startRinging();
        } else if (frame.type === "offer.revoked") {
          stopRinging();
          setOffer((o) => (o?.alert_id === data.alert_id ? null : o));
          setNotice("The alert was taken by another responder or withdrawn.");
        } else if (frame.type === "alert.assigned") {
          stopRinging();
          setOffer(null);
          api.get<Alert>(`/alerts/${String(data.alert_id)}`).then(setCurrent, () => undefined);
          // The person is shown me coming (and an arrival estimate) from my next fix: send one now.
          navigator.geolocation.getCurrentPosition((fix) => shareFix(fix, true), () => undefined, {
            enableHighAccuracy: true,
            maximumAge: 5000,
          });
        } else if (frame.type === "alert.updated") {
          setCurrent((c) => (c && c.id === data.alert_id ? { ...c, status: data.status as Alert["status"] } : c));
        } else if (frame.type === "alert.location") {
          setPerson(data as unknown as LivePosition);
        } else if (frame.type === "alert.eta") {
          setEta(data as unknown as Eta);
        } else if (frame.type === "media.added") {
          setMediaVersion((v) => v + 1);
        } else if (frame.type === "assignment.revoked") {
          setCurrent((c) => (c && c.id === data.alert_id ? null : c));
          setNotice("The alert was given to another responder.");
        }
      },
    });
    socketRef.current = live;
    setSocket(live);
    live.start();
    return () => {
      live.stop();
      socketRef.current = null;
      setSocket(null);
    };
  }, [session, shareFix]);

  const responding = current !== null && current.status !== "resolved" && current.status !== "cancelled";
  const chat = useChat(responding ? current.id : null, socket);


  // The position goes out only while on duty, and only when it moved (battery).
  useEffect(() => {
    if (!onDuty || !("geolocation" in navigator)) return;
    const watch = navigator.geolocation.watchPosition(
      (fix) => shareFix(fix),
      () => setNotice("Your position could not be read: allow location to receive alerts nearby."),
      { enableHighAccuracy: true, maximumAge: 5000 },
    );
    return () => navigator.geolocation.clearWatch(watch);
  }, [onDuty, shareFix]);

  function toggleDuty() {
    const next = !onDuty;
    duty.current = next;
    setOnDuty(next);
    socketRef.current?.send("agent.status", { status: next ? "available" : "offline" }, "duty");
  }

  function answer(accept: boolean) {
    if (!offer) return;
    stopRinging();
    socketRef.current?.send(accept ? "offer.accept" : "offer.decline", { alert_id: offer.alert_id });
    setOffer(null);
  }

  function progress(status: Progress) {
    if (!current) return;
    socketRef.current?.send("alert.status", { alert_id: current.id, status });
    if (status === "resolved") setNotice("Resolved. Thank you.");
  }

  return (
    <main className="duty">
      <header>
        <span>{me.full_name}</span>
        <span className={`connection ${connection}`}>{connection === "live" ? "Connected" : "Connecting…"}</span>
        <button type="button" className="link" onClick={() => void disablePush().then(() => session.signOut())}>
          Sign out
        </button>
      </header>
      <h1 className="sr-only">Panic Alert responder</h1>
      <button type="button" role="switch" aria-checked={onDuty} className={`switch${onDuty ? " on" : ""}`} onClick={toggleDuty}>
        On duty
      </button>
      <p role="status" className="notice">
        {notice ?? (onDuty ? "On duty: alerts nearby will ring." : "Off duty: no alerts.")}
      </p>
      <PushToggle />
      {responding && (
        <section aria-labelledby="current-title" className="current">
          <h2 id="current-title">
            {current.alert_type} alert: {current.status.replace("_", " ")}
          </h2>
          <p>
            Position: {current.latitude.toFixed(5)}, {current.longitude.toFixed(5)}
            {current.accuracy_m ? ` (±${Math.round(current.accuracy_m)} m)` : ""}
          </p>
          {current.user_name && <p>Person: {current.user_name}</p>}
          {current.description && <p>Note: {current.description}</p>}
          <p className="eta">
            {eta?.alert_id === current.id
              ? `${etaText(eta.eta_s)} (${distanceText(eta.distance_m)})`
              : "The estimated arrival shows once your position is shared."}
          </p>
          <ResponseMap
            person={person?.alert_id === current.id ? person : { latitude: current.latitude, longitude: current.longitude }}
            responder={here}
            label="Map of the route to the person"
          />
          <div className="actions">
            {STEPS.map((step) => (
              <button key={step.status} type="button" onClick={() => progress(step.status)}>
                {step.label}
              </button>
            ))}
          </div>
          <h3>Media</h3>
          <Evidence alertId={current.id} version={mediaVersion} />
          <Chat chat={chat} me="agent" />
        </section>
      )}
      {offer && <IncomingDialog key={offer.alert_id} offer={offer} onAnswer={answer} />}
    </main>
  );
}

export function App() {
  const { session, me, ended, ready } = useSession("agent");
  if (!ready) return <p className="card">Loading…</p>;
  return me ? <Duty me={me} session={session} /> : <SignIn session={session} ended={ended} />;
}
