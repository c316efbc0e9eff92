import { type ActionDispatch, useEffect, useState } from "react";

import { type Responder, listResponders, problemText } from "./api";
import type { Action, FormState } from "./draft";

/** The rules the chosen kind takes: a danger zone notifies, a safe zone ends check-ins, a service area names its responders. */
export function RulesFields({
  state,
  dispatch,
  describedBy,
  invalid,
}: {
  state: FormState;
  dispatch: ActionDispatch<[Action]>;
  describedBy: string | undefined;
  invalid: boolean;
}) {
  const [responders, setResponders] = useState<Responder[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const wantsResponders = state.kind === "service_area" && responders === null;

  useEffect(() => {
    if (!wantsResponders) return;
    let live = true;
    listResponders().then(
      (list) => live && setResponders(list),
      (caught: unknown) => live && setError(`The responders could not be loaded: ${problemText(caught)}`),
    );
    return () => {
      live = false;
    };
  }, [wantsResponders]);

  const set = (patch: Extract<Action, { type: "set" }>["patch"]) => dispatch({ type: "set", patch });
  const group = { "aria-describedby": describedBy, className: invalid ? "rules invalid" : "rules" };
  if (state.kind === "danger") {
    return (
      <fieldset {...group}>
        <legend>Rules</legend>
        <label className="checkbox">
          <input type="checkbox" checked={state.notifySubject} onChange={(e) => set({ notifySubject: e.target.checked })} />
          Warn the person entering
        </label>
        <label className="checkbox">
          <input type="checkbox" checked={state.notifyAdmins} onChange={(e) => set({ notifyAdmins: e.target.checked })} />
          Notify dispatchers
        </label>
      </fieldset>
    );
  }
  if (state.kind === "safe") {
    return (
      <fieldset {...group}>
        <legend>Rules</legend>
        <label className="checkbox">
          <input type="checkbox" checked={state.endCheckIn} onChange={(e) => set({ endCheckIn: e.target.checked })} />
          Arriving ends a running check-in
        </label>
      </fieldset>
    );
  }
  const known = new Set((responders ?? []).map((r) => r.id));
  const unknown = state.agentIds.filter((a) => !known.has(a));
  const toggle = (id: string, on: boolean) =>
    set({ agentIds: on ? [...state.agentIds.filter((a) => a !== id), id] : state.agentIds.filter((a) => a !== id) });
  return (
    <fieldset {...group}>
      <legend>Responders offered its alerts</legend>
      {error && <p className="error">{error}</p>}
      {responders === null && !error && <p className="hint">Loading responders…</p>}
      {responders?.length === 0 && <p className="hint">No approved responders yet.</p>}
      {[...(responders ?? []), ...unknown.map((id) => ({ id, label: `Responder ${id.slice(0, 8)}` }))].map((r) => (
        <label key={r.id} className="checkbox">
          <input type="checkbox" checked={state.agentIds.includes(r.id)} onChange={(e) => toggle(r.id, e.target.checked)} />
          {r.label}
        </label>
      ))}
    </fieldset>
  );
}
