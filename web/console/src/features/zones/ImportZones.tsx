import { type ChangeEvent, useId, useState } from "react";

import type { ZoneKind } from "@panic-alert/shared/api/types";
import { createZone, problemText } from "./api";
import { KIND_LABEL, KINDS, featureToZone, featuresOf } from "./geometry";

interface Outcome {
  index: number;
  name: string;
  ok: boolean;
  message: string;
}

/** "Import GeoJSON": each feature of a FeatureCollection POSTed in turn, each outcome listed. */
export function ImportZones({ onImported }: { onImported: () => void }) {
  const id = useId();
  const [defaultKind, setDefaultKind] = useState<ZoneKind>("safe");
  const [total, setTotal] = useState<number | null>(null);
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  const [running, setRunning] = useState(false);
  const [fileError, setFileError] = useState<string | null>(null);

  async function importFile(event: ChangeEvent<HTMLInputElement>) {
    const input = event.currentTarget;
    const file = input.files?.[0];
    if (!file) return;
    setFileError(null);
    setOutcomes([]);
    setTotal(null);
    let json: unknown;
    try {
      json = JSON.parse(await file.text()) as unknown;
    } catch {
      setFileError(`${file.name} is not JSON.`);
      input.value = "";
      return;
    }
    const features = featuresOf(json);
    if (!features.ok) {
      setFileError(`${file.name}: ${features.error}.`);
      input.value = "";
      return;
    }
    setTotal(features.value.length);
    setRunning(true);
    for (const [index, feature] of features.value.entries()) {
      const body = featureToZone(feature, defaultKind);
      let outcome: Outcome;
      if (!body.ok) {
        outcome = { index, name: `Feature ${index + 1}`, ok: false, message: body.error };
      } else {
        try {
          await createZone(body.value);
          outcome = { index, name: body.value.name, ok: true, message: "imported" };
        } catch (caught) {
          outcome = { index, name: body.value.name, ok: false, message: problemText(caught) };
        }
      }
      setOutcomes((list) => [...list, outcome]);
    }
    setRunning(false);
    input.value = "";
    onImported();
  }

  const imported = outcomes.filter((o) => o.ok).length;
  const refused = outcomes.length - imported;
  return (
    <section className="zone-import" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Import GeoJSON</h2>
      <p className="hint">
        A FeatureCollection of Polygons, MultiPolygons and Points; each feature's properties give its name, kind, radius_m (for a
        Point) and active.
      </p>
      <div className="form-row">
        <label>
          Default type for imported features
          <select value={defaultKind} onChange={(e) => setDefaultKind(KINDS.find((k) => k === e.target.value) ?? "safe")}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABEL[k]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Import GeoJSON file
          <input type="file" accept=".geojson,.json,application/geo+json,application/json" disabled={running} onChange={(e) => void importFile(e)} />
        </label>
      </div>
      {fileError && (
        <p role="alert" className="error">
          {fileError}
        </p>
      )}
      <p role="status" className="import-progress">
        {total === null
          ? ""
          : `Imported ${imported} of ${total}${refused ? `; ${refused} refused` : ""}${running ? ` (working on feature ${outcomes.length + 1})` : "."}`}
      </p>
      {outcomes.length > 0 && (
        <ol aria-label="Import results" className="import-results">
          {outcomes.map((o) => (
            <li key={o.index} className={o.ok ? "imported" : "refused"}>
              <strong>{o.name}</strong>: {o.ok ? "imported" : <span className="error">{o.message}</span>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
