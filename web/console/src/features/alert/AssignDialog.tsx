import { useEffect, useRef, useState } from "react";

import { ApiError, api } from "@panic-alert/shared/api/client";
import type { Candidate } from "@panic-alert/shared/api/types";

function distance(metres: number): string {
  return metres < 1000 ? `${Math.round(metres)} m` : `${(metres / 1000).toFixed(1)} km`;
}

/** The dialog "Assign responder": candidates nearest first, each a named option. */
export function AssignDialog({ alertId, onClose }: { alertId: string; onClose: (assigned: boolean) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [candidates, setCandidates] = useState<Candidate[] | null>(null);
  const [chosen, setChosen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    dialog.current?.showModal();
    api
      .get<{ items: Candidate[] }>(`/alerts/${alertId}/candidates`, { limit: 10 })
      .then((answer) => {
        setCandidates(answer.items);
        setChosen(answer.items[0]?.agent_id ?? null);
      })
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught.message : "Could not load responders."));
  }, [alertId]);

  async function assign() {
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      await api.post(`/alerts/${alertId}/assign`, { agent_id: chosen });
      dialog.current?.close();
      onClose(true);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "The assignment failed.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <dialog
      ref={dialog}
      aria-labelledby="assign-title"
      onCancel={(e) => {
        e.preventDefault();
        dialog.current?.close();
        onClose(false);
      }}
    >
      <h2 id="assign-title">Assign responder</h2>
      {candidates === null && !error && <p>Loading responders…</p>}
      {candidates?.length === 0 && <p>No responder with a known position.</p>}
      {candidates && candidates.length > 0 && (
        <fieldset>
          <legend>Nearest responders</legend>
          {candidates.map((c, index) => (
            <label key={c.agent_id} className="candidate">
              <input
                type="radio"
                name="candidate"
                value={c.agent_id}
                checked={chosen === c.agent_id}
                autoFocus={index === 0}
                onChange={() => setChosen(c.agent_id)}
              />
              {c.full_name}
              {c.badge_number ? ` (${c.badge_number})` : ""}, {distance(c.distance_m)}, {c.available ? "available" : c.status}
            </label>
          ))}
        </fieldset>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="button" onClick={() => void assign()} disabled={!chosen || busy}>
          Confirm assignment
        </button>
        <button
          type="button"
          onClick={() => {
            dialog.current?.close();
            onClose(false);
          }}
        >
          Close
        </button>
      </div>
    </dialog>
  );
}
