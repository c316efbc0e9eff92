import { type SubmitEvent, useCallback, useEffect, useState } from "react";

import { ApiError, api } from "@panic-alert/shared/api/client";
import type { Invite, RosterAgent, RosterPage } from "@panic-alert/shared/api/types";
import { fleet, useLive } from "../../app/live";

type Vetting = "pending" | "approved" | "suspended";

async function roster(status: Vetting): Promise<RosterAgent[]> {
  const all: RosterAgent[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page += 1) {
    const answer: RosterPage = await api.get<RosterPage>("/admin/agents", { status, limit: 100, cursor });
    all.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return all;
}

function SuspendForm({ agent, onDone }: { agent: RosterAgent; onDone: () => void }) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    try {
      await api.post(`/admin/agents/${agent.id}/suspend`, { reason });
      onDone();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "Suspending failed.");
    }
  }
  return (
    <form onSubmit={(e) => void submit(e)} className="inline-form">
      <label>
        Reason for suspending {agent.full_name}
        <input required value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} autoFocus />
      </label>
      <button type="submit">Confirm suspension</button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </form>
  );
}

function AgentRow({ agent, onChanged }: { agent: RosterAgent; onChanged: () => void }) {
  const [suspending, setSuspending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const live = fleet.get(agent.id);
  async function approve() {
    try {
      await api.post(`/admin/agents/${agent.id}/approve`, {});
      onChanged();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "Approving failed.");
    }
  }
  return (
    <li aria-label={agent.full_name} className="agent-row">
      <span>
        <strong>{agent.full_name}</strong> {agent.badge_number ? `(${agent.badge_number})` : ""} {agent.email}
      </span>
      <span>
        {agent.vetting}
        {agent.vetting_reason ? `: ${agent.vetting_reason}` : ""}; {live ? live.status : agent.availability}
        {agent.current_alert_id ? `; on alert ${agent.current_alert_id.slice(0, 8)}` : ""}
      </span>
      <span className="row-actions">
        {agent.vetting !== "approved" && (
          <button type="button" onClick={() => void approve()}>
            Approve
          </button>
        )}
        {agent.vetting !== "suspended" && (
          <button type="button" onClick={() => setSuspending(!suspending)} aria-expanded={suspending}>
            Suspend
          </button>
        )}
      </span>
      {suspending && <SuspendForm agent={agent} onDone={onChanged} />}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </li>
  );
}

function Invites() {
  const [invite, setInvite] = useState<Invite | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function issue() {
    try {
      setInvite(await api.post<Invite>("/admin/agent-invites", {}));
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "No code was issued.");
    }
  }
  return (
    <section aria-labelledby="invites-heading">
      <h2 id="invites-heading">Invite codes</h2>
      <p>A responder who registers with a code is approved at once. Each code works once.</p>
      <button type="button" onClick={() => void issue()}>
        Issue an invite code
      </button>
      {invite && (
        <p role="status">
          Code <code>{invite.code}</code>, valid until {new Date(invite.expires_at).toLocaleString()}. It is shown only
          once.
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}

/** The roster: pending responders to approve or suspend, the vetted ones with live availability. */
export function Responders() {
  const [lists, setLists] = useState<Record<Vetting, RosterAgent[]> | null>(null);
  const [error, setError] = useState<string | null>(null);
  useLive((s) => s.fleetVersion);
  const load = useCallback(() => {
    Promise.all([roster("pending"), roster("approved"), roster("suspended")])
      .then(([pending, approved, suspended]) => setLists({ pending, approved, suspended }))
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught.message : "Could not load the roster."));
  }, []);
  useEffect(load, [load]);

  return (
    <main className="page responders">
      <h1>Responders</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {lists && (
        <>
          <section aria-labelledby="pending-heading">
            <h2 id="pending-heading">Pending responders ({lists.pending.length})</h2>
            <ul aria-label="Pending responders">
              {lists.pending.map((a) => (
                <AgentRow key={a.id} agent={a} onChanged={load} />
              ))}
            </ul>
          </section>
          <section aria-labelledby="approved-heading">
            <h2 id="approved-heading">Approved responders ({lists.approved.length})</h2>
            <ul aria-label="Approved responders">
              {lists.approved.map((a) => (
                <AgentRow key={a.id} agent={a} onChanged={load} />
              ))}
            </ul>
          </section>
          <section aria-labelledby="suspended-heading">
            <h2 id="suspended-heading">Suspended responders ({lists.suspended.length})</h2>
            <ul aria-label="Suspended responders">
              {lists.suspended.map((a) => (
                <AgentRow key={a.id} agent={a} onChanged={load} />
              ))}
            </ul>
          </section>
        </>
      )}
      <Invites />
    </main>
  );
}
