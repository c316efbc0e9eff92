// The check-in timer: "Tell my contacts if I'm not home by …". POST /checkins
// starts it (with where the phone is now), GET /checkins/current finds it
// again after a reload, POST /checkins/{id}/complete ("I'm safe") ends it. Not
// completed in time, the server raises an alert for the user.
import "../extras.css";

import { ApiError, api } from "@panic-alert/shared/api/client";
import { type SubmitEvent, useEffect, useId, useState } from "react";

import type { CheckIn as Running } from "../schemas";
import { clock, countdown, nextAt, suggestedTime } from "./time";

function here(): Promise<GeolocationPosition> {
  return new Promise((resolve, reject) =>
    navigator.geolocation.getCurrentPosition(resolve, reject, { enableHighAccuracy: true, timeout: 10_000, maximumAge: 60_000 }),
  );
}

/** The running check-in; null when none runs (404). */
async function current(): Promise<Running | null> {
  try {
    return await api.get<Running>("/checkins/current");
  } catch (caught) {
    if (caught instanceof ApiError && caught.status === 404) return null;
    throw caught;
  }
}

function words(caught: unknown, fallback: string): string {
  if (caught instanceof ApiError && caught.status === 422) return caught.issues[0]?.msg.replace(/^Value error, /, "") ?? caught.message;
  return caught instanceof ApiError ? caught.message : fallback;
}

/** A second-by-second countdown to `due` (re-rendered each second while shown). */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

/** The check-in timer; `onRunning` hears whether one runs (the app shares its position meanwhile). */
export function CheckIn({ onRunning }: { onRunning?: (running: boolean) => void }) {
  const [running, setRunning] = useState<Running | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [time, setTime] = useState(() => suggestedTime(new Date()));
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [said, setSaid] = useState<string | null>(null);
  const now = useNow(running !== null);
  const timeHint = useId();
  const [version, setVersion] = useState(0);

  useEffect(() => onRunning?.(running !== null), [running, onRunning]);

  // The running check-in, if any (after a reload too).
  useEffect(() => {
    current()
      .then((found) => {
        setRunning(found);
        setLoaded(true);
      })
      .catch((caught: unknown) => {
        setError(words(caught, "Your check-in could not be read. Try again."));
        setLoaded(true);
      });
  }, [version]);

  async function start(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    setSaid(null);
    const due = nextAt(time, new Date());
    if (!due) {
      setError("Choose a time.");
      return;
    }
    setBusy(true);
    try {
      const where = await here();
      setRunning(
        await api.post<Running>("/checkins", {
          due_at: due.toISOString(),
          latitude: where.coords.latitude,
          longitude: where.coords.longitude,
          accuracy_m: where.coords.accuracy,
          note: note.trim() || null,
        }),
      );
    } catch (caught) {
      if (caught instanceof GeolocationPositionError) setError("Your position could not be read: allow location to start a check-in.");
      else if (caught instanceof ApiError && caught.status === 409) setVersion((v) => v + 1);
      else setError(words(caught, "The check-in could not be started. Try again."));
    } finally {
      setBusy(false);
    }
  }

  async function complete(check: Running) {
    setError(null);
    setBusy(true);
    try {
      await api.post<Running>(`/checkins/${check.id}/complete`);
      setRunning(null);
      setSaid("You checked in: your contacts will not be told.");
    } catch (caught) {
      if (caught instanceof ApiError && (caught.status === 409 || caught.status === 404)) {
        setRunning(null);
        setSaid("This check-in had already ended.");
      } else setError(words(caught, "Not checked in: the server could not be reached. Try again."));
    } finally {
      setBusy(false);
    }
  }

  const due = running ? new Date(running.due_at) : null;
  const left = due ? due.getTime() - now : 0;
  const overdue = running !== null && left <= 0;

  // Past the due time the server ends it (missed: an alert is raised): read it
  // again every few seconds until it says so.
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    if (!overdue) return;
    const timer = setTimeout(() => {
      current()
        .then((found) => {
          if (found) setAsked((n) => n + 1);
          else {
            setRunning(null);
            setSaid("Your check-in has ended. If you had not checked in, an alert was raised and your contacts are told.");
          }
        })
        .catch(() => setAsked((n) => n + 1));
    }, 5000);
    return () => clearTimeout(timer);
  }, [overdue, asked]);
  return (
    <section className="extra" aria-labelledby="checkin-heading">
      <h2 id="checkin-heading">Check-in</h2>
      <p role="status" className="detail">
        {said}
      </p>
      {!loaded && <p>Loading…</p>}
      {loaded && running && due && (
        <div className="checkin-running">
          <p>
            Your contacts are told if you have not checked in by <strong>{clock(due)}</strong>
            {running.note ? ` (${running.note})` : ""}.
          </p>
          <p role="timer" aria-label="Time left to check in" className="countdown">
            {left > 0 ? `${countdown(left)} left` : "Time is up: your contacts are being told."}
          </p>
          <button type="button" className="safe" disabled={busy} onClick={() => void complete(running)}>
            I'm safe
          </button>
        </div>
      )}
      {loaded && !running && (
        <form onSubmit={(e) => void start(e)}>
          <div className="field">
            <label htmlFor={`${timeHint}-input`}>Tell my contacts if I'm not home by</label>
            <span id={timeHint} className="hint">
              A time within the next 24 hours
            </span>
            <input
              id={`${timeHint}-input`}
              type="time"
              required
              aria-describedby={timeHint}
              value={time}
              onChange={(e) => setTime(e.target.value)}
            />
          </div>
          <label>
            Where are you going? (optional)
            <input maxLength={500} value={note} onChange={(e) => setNote(e.target.value)} />
          </label>
          <button type="submit" disabled={busy}>
            Start check-in
          </button>
        </form>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}
