import { type ActionDispatch, type SubmitEvent, useId, useState } from "react";

import { ApiError } from "@panic-alert/shared/api/client";
import type { Zone } from "@panic-alert/shared/api/types";
import { createZone, replaceZone } from "./api";
import { type Action, type FormState, zoneBody } from "./draft";
import { type Field, KIND_LABEL, KINDS, fieldOfLoc } from "./geometry";
import { RulesFields } from "./RulesFields";

const FIELD_LABEL: Record<Field, string> = {
  name: "Name",
  kind: "Kind",
  geometry: "Shape",
  radius_m: "Radius (m)",
  active: "Active",
  rules: "Rules",
  form: "Zone",
};

interface Issue {
  field: Field;
  msg: string;
}

export interface ZoneFormProps {
  state: FormState;
  dispatch: ActionDispatch<[Action]>;
  onSaved: (zone: Zone, created: boolean) => void;
}

/** "New zone" / "Edit zone": the fields, the drawing buttons, and the server's errors in place. */
export function ZoneForm({ state, dispatch, onSaved }: ZoneFormProps) {
  const id = useId();
  const [issues, setIssues] = useState<Issue[]>([]);
  const [saving, setSaving] = useState(false);
  const editing = state.editing;

  const errorsOf = (field: Field) => issues.filter((i) => i.field === field);
  const errorId = (field: Field) => `${id}-${field}-error`;
  /** aria-invalid and aria-describedby for a field with errors. */
  const invalid = (field: Field, extra?: string) => {
    const has = errorsOf(field).length > 0;
    const described = [has ? errorId(field) : null, extra ?? null].filter(Boolean).join(" ");
    return { "aria-invalid": has || undefined, "aria-describedby": described || undefined };
  };
  const fieldErrors = (field: Field) => {
    const list = errorsOf(field);
    if (list.length === 0) return null;
    return (
      <p id={errorId(field)} className="error field-error">
        {list.map((i) => i.msg).join("; ")}
      </p>
    );
  };

  async function save(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const built = zoneBody(state);
    if (!built.ok) {
      setIssues([{ field: built.field, msg: built.error }]);
      return;
    }
    setSaving(true);
    try {
      const saved = editing ? await replaceZone(editing.id, built.value) : await createZone(built.value);
      setIssues([]);
      onSaved(saved, !editing);
    } catch (caught) {
      if (caught instanceof ApiError && caught.issues.length > 0) {
        setIssues(caught.issues.map((issue) => ({ field: fieldOfLoc(issue.loc), msg: issue.msg })));
      } else {
        setIssues([{ field: "form", msg: caught instanceof Error ? caught.message : "Saving failed." }]);
      }
    } finally {
      setSaving(false);
    }
  }

  function cancel() {
    setIssues([]);
    dispatch({ type: "reset" });
  }

  const title = editing ? `Edit zone ${editing.name}` : "New zone";
  const polygon = state.shape === "polygon";
  const hintId = `${id}-hint`;
  return (
    <form className="zone-form" aria-labelledby={`${id}-title`} onSubmit={(e) => void save(e)} noValidate>
      <h2 id={`${id}-title`}>{title}</h2>
      {issues.length > 0 && (
        <div role="alert" className="error-summary">
          <p>The zone was not saved:</p>
          <ul>
            {issues.map((issue, i) => (
              <li key={i}>
                {FIELD_LABEL[issue.field]}: {issue.msg}
              </li>
            ))}
          </ul>
        </div>
      )}
      <label>
        Name
        <input
          value={state.name}
          onChange={(e) => dispatch({ type: "set", patch: { name: e.target.value } })}
          maxLength={200}
          {...invalid("name")}
        />
      </label>
      {fieldErrors("name")}
      <div className="form-row">
        <label>
          Kind
          <select
            value={state.kind}
            onChange={(e) => dispatch({ type: "set", patch: { kind: KINDS.find((k) => k === e.target.value) ?? "safe" } })}
            {...invalid("kind")}
          >
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABEL[k]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Shape
          <select
            value={state.shape}
            onChange={(e) => dispatch({ type: "set", patch: { shape: e.target.value === "circle" ? "circle" : "polygon" } })}
            {...invalid("geometry", hintId)}
          >
            <option value="polygon">Polygon</option>
            <option value="circle">Circle</option>
          </select>
        </label>
        <label className="checkbox">
          <input
            type="checkbox"
            checked={state.active}
            onChange={(e) => dispatch({ type: "set", patch: { active: e.target.checked } })}
            {...invalid("active")}
          />
          Active
        </label>
      </div>
      {fieldErrors("kind")}
      {fieldErrors("active")}
      <RulesFields
        state={state}
        dispatch={dispatch}
        describedBy={errorsOf("rules").length > 0 ? errorId("rules") : undefined}
        invalid={errorsOf("rules").length > 0}
      />
      {fieldErrors("rules")}
      <p id={hintId} className="hint">
        {polygon
          ? state.finished
            ? `Shape closed with ${state.vertices.length} points. Clear it to draw again, or edit the coordinates.`
            : `Click the map to add points (${state.vertices.length} so far), then Finish shape; or type the coordinates.`
          : state.centre
            ? "Centre set. Click the map elsewhere to move it."
            : "Click the map to set the centre, or type it."}
        {state.kept && state.vertices.length === 0
          ? ` This zone is a ${state.kept.type}${state.kept.type === "Polygon" ? " with holes" : ""}: it is kept as it is unless you draw or type a new shape.`
          : ""}
      </p>
      {fieldErrors("geometry")}
      {polygon ? (
        <>
          <div className="form-row">
            <button type="button" onClick={() => dispatch({ type: "finish" })} disabled={state.finished || state.vertices.length < 3}>
              Finish shape
            </button>
            <button type="button" onClick={() => dispatch({ type: "clear" })}>
              Clear shape
            </button>
          </div>
          <label>
            Coordinates (lon,lat per line)
            <textarea
              rows={5}
              value={state.coordsText}
              onChange={(e) => dispatch({ type: "coords", text: e.target.value })}
              spellCheck={false}
              aria-invalid={state.coordsError !== null || errorsOf("geometry").length > 0 || undefined}
              aria-describedby={[state.coordsError ? `${id}-coords-error` : null, errorsOf("geometry").length ? errorId("geometry") : null].filter(Boolean).join(" ") || undefined}
            />
          </label>
          {state.coordsError && (
            <p id={`${id}-coords-error`} className="error field-error">
              {state.coordsError}
            </p>
          )}
        </>
      ) : (
        <>
          <div className="form-row">
            <label>
              Centre (lon,lat)
              <input
                value={state.centreText}
                onChange={(e) => dispatch({ type: "centre", text: e.target.value })}
                spellCheck={false}
                aria-invalid={state.centreError !== null || errorsOf("geometry").length > 0 || undefined}
                aria-describedby={[state.centreError ? `${id}-centre-error` : null, errorsOf("geometry").length ? errorId("geometry") : null].filter(Boolean).join(" ") || undefined}
              />
            </label>
            <label>
              Radius (m)
              <input
                type="number"
                min={1}
                max={50000}
                step="any"
                value={state.radius}
                onChange={(e) => dispatch({ type: "set", patch: { radius: e.target.value } })}
                {...invalid("radius_m")}
              />
            </label>
            <button type="button" onClick={() => dispatch({ type: "clear" })}>
              Clear shape
            </button>
          </div>
          {state.centreError && (
            <p id={`${id}-centre-error`} className="error field-error">
              {state.centreError}
            </p>
          )}
          {fieldErrors("radius_m")}
        </>
      )}
      <div className="form-row">
        <button type="submit" disabled={saving}>
          Save zone
        </button>
        {(editing || state.name || state.vertices.length > 0 || state.centre) && (
          <button type="button" className="secondary" onClick={cancel}>
            {editing ? "Cancel editing" : "Reset form"}
          </button>
        )}
      </div>
    </form>
  );
}
