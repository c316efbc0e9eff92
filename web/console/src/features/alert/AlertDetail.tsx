import { type SubmitEvent, useEffect, useState } from "react";

import { ApiError, api } from "@panic-alert/shared/api/client";
import type { AdminAlert, AlertStatus, Delivery, TimelineEntry } from "@panic-alert/shared/api/types";
import { Evidence } from "@panic-alert/shared/ui/Evidence";
import { fleet, live, useLive } from "../../app/live";
import { STATUS_LABEL, describeAlert, shortId, stepText } from "../../app/naming";
import { selectAlert, useUi } from "../../app/ui";
import { useNow } from "../../shared/useNow";
import { elapsed } from "../../shared/Elapsed";
import { actionsFor, canAssign } from "./actions";
import { AssignDialog } from "./AssignDialog";

function position(lat: number, lon: number): string {
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}

function StatusForm({ alert, onDone }: { alert: AdminAlert; onDone: () => void }) {
  const [pending, setPending] = useState<AlertStatus | null>(null);
  const [note, setNote] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function send(status: AlertStatus, withNote: string | null) {
    setError(null);
    try {
      await api.put(`/alerts/${alert.id}/status`, { status, note: withNote || null });
      setPending(null);
      setNote("");
      onDone();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "The change failed.");
    }
  }

  function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    if (pending) void send(pending, note.trim());
  }

  const actions = actionsFor(alert.status);
  return (
    <div className="status-actions">
      {actions.map((action) =>
        action.note ? (
          <button key={action.status} type="button" onClick={() => setPending(action.status)}>
            {action.label}
          </button>
        ) : (
          <button key={action.status} type="button" onClick={() => void send(action.status, null)}>
            {action.label}
          </button>
        ),
      )}
      {pending && (
        <form onSubmit={submit} className="note-form">
          <label>
            Note for {STATUS_LABEL[pending]}
            <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={1000} />
          </label>
          <button type="submit">Confirm {STATUS_LABEL[pending]}</button>
          <button type="button" onClick={() => setPending(null)}>
            Back
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

/** One alert as it happens: timeline, positions, contact deliveries, media, actions. */
export function AlertDetail({ alertId }: { alertId: string }) {
  const known = useLive((s) => s.alerts[alertId]);
  const version = useLive((s) => s.alertVersions[alertId] ?? 0);
  const userPosition = useLive((s) => s.userPositions[alertId]);
  useLive((s) => s.fleetVersion);
  const assigning = useUi((s) => s.assigning);
  const [alert, setAlert] = useState<AdminAlert | null>(known ?? null);
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const now = useNow();

  useEffect(() => {
    let cancelled = false;
    Promise.all([
      api.get<AdminAlert>(`/alerts/${alertId}`),
      api.get<{ items: TimelineEntry[] }>(`/alerts/${alertId}/timeline`),
    ])
      .then(([fresh, steps]) => {
        if (cancelled) return;
        setAlert(fresh);
        setTimeline(steps.items);
        live.alert(fresh);
      })
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught.message : "Could not load the alert."));
    api
      .get<{ items: Delivery[] }>(`/alerts/${alertId}/notifications`)
      .then((answer) => !cancelled && setDeliveries(answer.items))
      .catch(() => !cancelled && setDeliveries(null));
    return () => {
      cancelled = true;
    };
  }, [alertId, version, reload]);

  const shown = known ?? alert;
  if (!shown) return <section className="detail" aria-label="Alert detail">{error ?? "Loading…"}</section>;
  const responder = shown.assigned_agent_id ? fleet.get(shown.assigned_agent_id) : undefined;
  const where = userPosition ?? shown;

  return (
    <section className="detail" aria-labelledby="detail-heading">
      <div className="detail-head">
        <h2 id="detail-heading">
          {shown.alert_type} alert <code>{shortId(shown.id)}</code>
        </h2>
        <button type="button" onClick={() => selectAlert(null)} aria-label="Close alert detail">
          ×
        </button>
      </div>
      <p className="sr-only">{describeAlert(shown)}</p>
      <dl className="facts">
        <dt>Status</dt>
        <dd>{STATUS_LABEL[shown.status]}</dd>
        <dt>Age</dt>
        <dd>{elapsed(Date.parse(shown.created_at), now)}</dd>
        {shown.duress && (
          <>
            <dt>Duress</dt>
            <dd>The user cancelled with the duress PIN: treat as live and do not contact them openly.</dd>
          </>
        )}
        {shown.silent && (
          <>
            <dt>Silent</dt>
            <dd>Raised silently: the user's phone shows nothing.</dd>
          </>
        )}
        <dt>User</dt>
        <dd>{shown.user_name ?? shortId(shown.user_id)}</dd>
        <dt>User position</dt>
        <dd>
          {position(where.latitude, where.longitude)}
          {userPosition?.at ? ` (${elapsed(Date.parse(userPosition.at), now)} ago)` : ""}
        </dd>
        {shown.description && (
          <>
            <dt>Description</dt>
            <dd>{shown.description}</dd>
          </>
        )}
        <dt>Responder</dt>
        <dd>
          {shown.assigned_agent_id
            ? `${responder?.full_name ?? shortId(shown.assigned_agent_id)}${
                responder && responder.latitude !== null && responder.longitude !== null
                  ? ` at ${position(responder.latitude, responder.longitude)}${responder.at ? `, ${elapsed(Date.parse(responder.at), now)} ago` : ""}`
                  : ""
              }`
            : "none yet"}
        </dd>
      </dl>
      <div className="actions">
        {canAssign(shown.status) && (
          <button type="button" onClick={() => selectAlert(alertId, true)}>
            Assign
          </button>
        )}
        <StatusForm alert={shown} onDone={() => setReload(reload + 1)} />
      </div>
      {assigning && (
        <AssignDialog
          alertId={alertId}
          onClose={(assigned) => {
            selectAlert(alertId, false);
            if (assigned) setReload(reload + 1);
          }}
        />
      )}
      <h3>Timeline</h3>
      <ol className="timeline" aria-label="Timeline">
        {timeline.map((step, index) => (
          <li key={`${step.at}-${index}`}>
            <time dateTime={step.at}>{new Date(step.at).toLocaleTimeString()}</time> {stepText(step)}
          </li>
        ))}
      </ol>
      <h3>Emergency contacts</h3>
      {deliveries === null && <p>No delivery record.</p>}
      {deliveries && deliveries.length === 0 && <p>No contact was notified.</p>}
      {deliveries && deliveries.length > 0 && (
        <ul className="deliveries" aria-label="Contact deliveries">
          {deliveries.map((d) => (
            <li key={d.id}>
              {d.contact_name ?? "contact"} by {d.channel}: {d.status}
              {d.last_error ? ` (${d.last_error})` : ""}
            </li>
          ))}
        </ul>
      )}
      <h3>Media</h3>
      <Evidence alertId={alertId} version={version} />
    </section>
  );
}
