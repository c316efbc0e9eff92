import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";

import type { Zone } from "@panic-alert/shared/api/types";
import { deleteZone, listZones, problemText } from "./api";
import { EMPTY_FORM, draftGeometries, formReducer, isDrawing } from "./draft";
import { KIND_LABEL, type Position, boundsOf, zoneShape } from "./geometry";
import { ImportZones } from "./ImportZones";
import { ZoneForm } from "./ZoneForm";
import { ZoneMap } from "./ZoneMap";

function ZoneRow({
  zone,
  onEdit,
  onDeleted,
  onShow,
}: {
  zone: Zone;
  onEdit: () => void;
  onDeleted: (message: string) => void;
  onShow: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function remove() {
    try {
      await deleteZone(zone.id);
      onDeleted(`Deleted ${zone.name}.`);
    } catch (caught) {
      setError(`Deleting failed: ${problemText(caught)}`);
    }
  }
  return (
    <li className={`zone-row kind-${zone.kind}`}>
      <span className="zone-name">
        <span className={`swatch ${zone.kind}`} aria-hidden="true" />
        <strong>{zone.name}</strong>
      </span>
      <span className="zone-facts">
        {KIND_LABEL[zone.kind]}; {zone.active ? "active" : "inactive"}; {zone.geometry.type === "Point" ? `circle of ${zone.radius_m ?? "?"} m` : zone.geometry.type}
      </span>
      <span className="row-actions">
        <button type="button" className="secondary" onClick={onShow} aria-label={`Show ${zone.name} on the map`}>
          Show
        </button>
        <button type="button" onClick={onEdit} aria-label={`Edit ${zone.name}`}>
          Edit
        </button>
        {confirming ? (
          <>
            <button type="button" className="danger" onClick={() => void remove()} aria-label={`Confirm delete ${zone.name}`} autoFocus>
              Confirm delete
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)} aria-label={`Keep ${zone.name}`}>
              Keep
            </button>
          </>
        ) : (
          <button type="button" className="danger" onClick={() => setConfirming(true)} aria-label={`Delete ${zone.name}`}>
            Delete
          </button>
        )}
      </span>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </li>
  );
}

/** Zones: list, draw and edit polygons and circles on the map, import GeoJSON (issue 18, item 6). */
export function Zones() {
  const [zones, setZones] = useState<Zone[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [notice, setNotice] = useState("");
  const [form, dispatch] = useReducer(formReducer, EMPTY_FORM);
  const [focus, setFocus] = useState<[Position, Position] | null>(null);
  const formRef = useRef<HTMLDivElement>(null);
  const fitted = useRef(false);

  const reload = useCallback(async () => {
    try {
      const all = await listZones();
      setZones(all);
      setLoadError(null);
      if (!fitted.current) {
        fitted.current = true;
        const shapes = all.map(zoneShape).filter((g) => g !== null);
        const bounds = boundsOf(shapes);
        if (bounds) setFocus(bounds);
      }
    } catch (caught) {
      setLoadError(`The zones could not be loaded: ${problemText(caught)}`);
    }
  }, []);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- the first load, as the roster does
    void reload();
  }, [reload]);

  const onMapClick = useCallback((at: Position) => dispatch({ type: "click", at }), []);
  const draft = useMemo(() => draftGeometries(form), [form]);
  // The zone being edited shows as the draft only, not twice.
  const editingId = form.editing?.id;
  const drawn = useMemo(() => (zones ?? []).filter((z) => z.id !== editingId), [zones, editingId]);

  function show(zone: Zone) {
    const shape = zoneShape(zone);
    const bounds = shape ? boundsOf([shape]) : null;
    if (bounds) setFocus(bounds);
  }

  function edit(zone: Zone) {
    dispatch({ type: "edit", zone });
    show(zone);
    setNotice("");
    // Move to the form, as a keyboard user would expect after "Edit".
    requestAnimationFrame(() => formRef.current?.querySelector("input")?.focus());
  }

  return (
    <main className="zones-page">
      <div className="zones-side">
        <h1 tabIndex={-1}>Zones</h1>
        <p role="status" className="notice">
          {notice}
        </p>
        {loadError && (
          <p role="alert" className="error">
            {loadError}
          </p>
        )}
        {zones === null ? (
          <p>Loading zones…</p>
        ) : zones.length === 0 ? (
          <p className="empty">No zones yet: draw one below or import a GeoJSON file.</p>
        ) : null}
        <ul aria-label="Zones" className="zone-list">
          {(zones ?? []).map((zone) => (
            <ZoneRow
              key={zone.id}
              zone={zone}
              onEdit={() => edit(zone)}
              onShow={() => show(zone)}
              onDeleted={(message) => {
                setNotice(message);
                if (form.editing?.id === zone.id) dispatch({ type: "reset" });
                void reload();
              }}
            />
          ))}
        </ul>
        <div ref={formRef}>
          <ZoneForm
            key={form.editing?.id ?? "new"}
            state={form}
            dispatch={dispatch}
            onSaved={(zone, created) => {
              setNotice(created ? `Created ${zone.name}.` : `Saved ${zone.name}.`);
              dispatch({ type: "reset" });
              void reload();
            }}
          />
        </div>
        <ImportZones
          onImported={() => {
            void reload();
          }}
        />
      </div>
      <ZoneMap zones={drawn} draft={draft} drawing={isDrawing(form)} onMapClick={onMapClick} focus={focus} />
    </main>
  );
}
