import { type KeyboardEvent, useMemo, useRef, useState } from "react";

import type { AlertStatus, AlertType } from "@panic-alert/shared/api/types";
import { useLive } from "../../app/live";
import { OPEN_STATUSES } from "../../app/model";
import { STATUS_LABEL, shortId } from "../../app/naming";
import { selectAlert, useUi } from "../../app/ui";
import { useNow } from "../../shared/useNow";
import { Elapsed } from "../../shared/Elapsed";
import { NEW_FOR_MS, type QueueFilter, queue } from "./urgency";

const TYPES: readonly AlertType[] = ["panic", "medical", "fire", "security", "other"];

/** The open alerts, most urgent first, with live timers; arrow keys move, Enter opens, A assigns. */
export function AlertQueue() {
  const alerts = useLive((s) => s.alerts);
  const selected = useUi((s) => s.selectedAlertId);
  const [filter, setFilter] = useState<QueueFilter>({ status: "all", type: "all" });
  // "new" lasts a minute: re-rendering every 5 s is enough for it (timers tick on their own).
  const now = useNow(5000);
  const list = useRef<HTMLUListElement>(null);
  const shown = useMemo(() => queue(Object.values(alerts), filter), [alerts, filter]);

  function onKey(event: KeyboardEvent<HTMLUListElement>) {
    const buttons = Array.from(list.current?.querySelectorAll<HTMLButtonElement>("button.alert-item") ?? []);
    const at = buttons.findIndex((b) => b === document.activeElement);
    const focus = (index: number) => buttons[Math.max(0, Math.min(buttons.length - 1, index))]?.focus();
    if (event.key === "ArrowDown" || event.key === "j") focus(at + 1);
    else if (event.key === "ArrowUp" || event.key === "k") focus(at - 1);
    else if (event.key === "Home") focus(0);
    else if (event.key === "End") focus(buttons.length - 1);
    else if ((event.key === "a" || event.key === "A") && at >= 0) {
      const id = buttons[at]?.dataset.alertId;
      if (id) selectAlert(id, true);
    } else return;
    event.preventDefault();
  }

  return (
    <section className="queue" aria-labelledby="queue-heading">
      <h2 id="queue-heading">Open alerts ({shown.length})</h2>
      <div className="filters">
        <label>
          Status
          <select
            value={filter.status}
            onChange={(e) => setFilter({ ...filter, status: e.target.value as AlertStatus | "all" })}
          >
            <option value="all">all open</option>
            {OPEN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select
            value={filter.type}
            onChange={(e) => setFilter({ ...filter, type: e.target.value as AlertType | "all" })}
          >
            <option value="all">all types</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ul aria-label="Open alerts" ref={list} onKeyDown={onKey} className="alert-list">
        {shown.map((alert) => {
          const fresh = now - alert.seenAt < NEW_FOR_MS;
          return (
            <li key={alert.id}>
              <button
                type="button"
                className={`alert-item status-${alert.status}${fresh ? " is-new" : ""}`}
                data-alert-id={alert.id}
                aria-current={selected === alert.id ? "true" : undefined}
                onClick={() => selectAlert(alert.id)}
              >
                <span className="row">
                  {/* The visible text is the accessible name: "<type> alert <short id> <status> ..." */}
                  <strong>{alert.alert_type} alert</strong> <code>{shortId(alert.id)}</code>
                  <span className={`badge status-${alert.status}`}>{STATUS_LABEL[alert.status]}</span>
                  {fresh && <span className="badge new">new</span>}
                  {alert.duress && <span className="badge duress">duress</span>}
                  {alert.silent && <span className="badge silent">silent</span>}
                </span>
                <span className="row timers">
                  <span>
                    age <Elapsed since={alert.created_at} />
                  </span>
                  {alert.offered_at && (
                    <span>
                      offer <Elapsed since={alert.offered_at} />
                    </span>
                  )}
                  {(alert.escalation_step ?? 0) > 0 && (
                    <span>step {alert.escalation_step}</span>
                  )}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      {shown.length === 0 && <p className="empty">No open alerts.</p>}
      <details className="shortcuts">
        <summary>Keyboard shortcuts</summary>
        <dl>
          <dt>↓ or j, ↑ or k</dt>
          <dd>next, previous alert</dd>
          <dt>Home, End</dt>
          <dd>first, last alert</dd>
          <dt>Enter</dt>
          <dd>open the alert</dd>
          <dt>a</dt>
          <dd>assign a responder to it</dd>
          <dt>Escape</dt>
          <dd>close the dialog</dd>
        </dl>
      </details>
    </section>
  );
}
