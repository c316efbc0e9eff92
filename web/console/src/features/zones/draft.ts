// The zone form's state as a pure reducer: what is typed, what the map's
// clicks drew, and the body it saves. The map and the textarea edit the
// same vertices, so either way of drawing shows in the other.
import type { Geometry } from "geojson";

import type { Zone, ZoneIn, ZoneKind } from "@panic-alert/shared/api/types";
import {
  type Field,
  type Position,
  type ZoneGeometry,
  circlePolygon,
  closeRing,
  formatCoordinates,
  parseCoordinates,
  parsePosition,
} from "./geometry";

export type Shape = "polygon" | "circle";

export interface FormState {
  /** The zone being edited (PUT), or null for a new one (POST). */
  editing: Zone | null;
  name: string;
  kind: ZoneKind;
  active: boolean;
  shape: Shape;
  vertices: Position[];
  /** "Finish shape" pressed: clicks no longer add vertices. */
  finished: boolean;
  coordsText: string;
  coordsError: string | null;
  centre: Position | null;
  centreText: string;
  centreError: string | null;
  radius: string;
  /** Rules, each for the one kind it fits: danger zones notify, safe zones end check-ins, service areas list responders. */
  notifySubject: boolean;
  notifyAdmins: boolean;
  endCheckIn: boolean;
  agentIds: string[];
  /** An edited zone's geometry the drawing tools cannot redraw (a MultiPolygon, holes): saved as is until cleared. */
  kept: ZoneGeometry | null;
}

export const EMPTY_FORM: FormState = {
  editing: null,
  name: "",
  kind: "safe",
  active: true,
  shape: "polygon",
  vertices: [],
  finished: false,
  coordsText: "",
  coordsError: null,
  centre: null,
  centreText: "",
  centreError: null,
  radius: "250",
  notifySubject: false,
  notifyAdmins: false,
  endCheckIn: false,
  agentIds: [],
  kept: null,
};

export type Action =
  | {
      type: "set";
      patch: Partial<
        Pick<FormState, "name" | "kind" | "active" | "radius" | "shape" | "notifySubject" | "notifyAdmins" | "endCheckIn" | "agentIds">
      >;
    }
  | { type: "click"; at: Position }
  | { type: "finish" }
  | { type: "clear" }
  | { type: "coords"; text: string }
  | { type: "centre"; text: string }
  | { type: "edit"; zone: Zone }
  | { type: "reset" };

const cleared = {
  vertices: [],
  finished: false,
  coordsText: "",
  coordsError: null,
  centre: null,
  centreText: "",
  centreError: null,
  kept: null,
} satisfies Partial<FormState>;

/** The form a zone loads into for editing. */
export function formFromZone(zone: Zone): FormState {
  const base: FormState = {
    ...EMPTY_FORM,
    editing: zone,
    name: zone.name,
    kind: zone.kind,
    active: zone.active,
    notifySubject: zone.rules.notify_subject,
    notifyAdmins: zone.rules.notify_admins,
    endCheckIn: zone.rules.end_check_in,
    agentIds: zone.rules.agent_ids ?? [],
  };
  const g = zone.geometry;
  if (g.type === "Point") {
    return {
      ...base,
      shape: "circle",
      centre: g.coordinates,
      centreText: formatCoordinates([g.coordinates]),
      radius: zone.radius_m === null ? "" : String(zone.radius_m),
    };
  }
  const outer = g.type === "Polygon" && g.coordinates.length === 1 ? g.coordinates[0] : undefined;
  if (!outer) return { ...base, kept: g };
  const vertices = outer.slice(0, -1);
  return { ...base, vertices, finished: true, coordsText: formatCoordinates(vertices) };
}

export function formReducer(state: FormState, action: Action): FormState {
  switch (action.type) {
    case "set":
      return { ...state, ...action.patch };
    case "click":
      if (state.shape === "circle") {
        return { ...state, centre: action.at, centreText: formatCoordinates([action.at]), centreError: null };
      }
      if (state.finished) return state;
      {
        const vertices = [...state.vertices, action.at];
        return { ...state, vertices, coordsText: formatCoordinates(vertices), coordsError: null, kept: null };
      }
    case "finish":
      return state.vertices.length >= 3 ? { ...state, finished: true } : state;
    case "clear":
      return { ...state, ...cleared };
    case "coords": {
      const parsed = parseCoordinates(action.text);
      if (!parsed.ok) return { ...state, coordsText: action.text, coordsError: parsed.error };
      return {
        ...state,
        coordsText: action.text,
        coordsError: null,
        vertices: parsed.value,
        kept: parsed.value.length > 0 ? null : state.kept,
      };
    }
    case "centre": {
      if (!action.text.trim()) return { ...state, centreText: action.text, centre: null, centreError: null };
      const parsed = parsePosition(action.text);
      if (!parsed.ok) return { ...state, centreText: action.text, centreError: parsed.error.replace(/^line 1: /, "") };
      return { ...state, centreText: action.text, centre: parsed.value, centreError: null };
    }
    case "edit":
      return formFromZone(action.zone);
    case "reset":
      return EMPTY_FORM;
  }
}

/** Clicks on the map draw (add a vertex, set the centre). */
export const isDrawing = (state: FormState) => state.shape === "circle" || !state.finished;

/** What the map shows of the draft: vertices and the line between them, or the closed polygon; a circle and its centre. */
export function draftGeometries(state: FormState): Geometry[] {
  if (state.shape === "circle") {
    if (!state.centre) return [];
    const radius = Number(state.radius);
    const out: Geometry[] = [{ type: "Point", coordinates: state.centre }];
    if (state.radius.trim() && Number.isFinite(radius) && radius > 0) out.unshift(circlePolygon(state.centre, radius));
    return out;
  }
  const points: Geometry[] = state.vertices.map((p) => ({ type: "Point", coordinates: p }));
  const polygon = state.finished ? closeRing(state.vertices) : null;
  if (polygon) return [polygon, ...points];
  if (state.vertices.length >= 2) return [{ type: "LineString", coordinates: state.vertices }, ...points];
  if (state.kept) return [state.kept];
  return points;
}

export type Built = { ok: true; value: ZoneIn } | { ok: false; field: Field; error: string };

/** The body "Save zone" sends; a local error (with its field) when there is no shape to send. */
export function zoneBody(state: FormState): Built {
  const body: ZoneIn = { name: state.name, kind: state.kind, active: state.active, geometry: { type: "Point", coordinates: [0, 0] } };
  // Only the rules the kind takes (the server refuses the others); an edited zone keeps its dwell time.
  const danger = state.kind === "danger";
  body.rules = {
    notify_subject: danger && state.notifySubject,
    notify_admins: danger && state.notifyAdmins,
    end_check_in: state.kind === "safe" && state.endCheckIn,
    agent_ids: state.kind === "service_area" ? state.agentIds : null,
    dwell_s: state.editing?.rules.dwell_s ?? null,
  };
  if (state.shape === "circle") {
    if (state.centreError) return { ok: false, field: "geometry", error: state.centreError };
    if (!state.centre) return { ok: false, field: "geometry", error: "Click the map or type the centre (lon,lat)." };
    body.geometry = { type: "Point", coordinates: state.centre };
    if (state.radius.trim()) {
      const radius = Number(state.radius);
      if (!Number.isFinite(radius)) return { ok: false, field: "radius_m", error: "The radius must be a number of metres." };
      body.radius_m = radius;
    }
    return { ok: true, value: body };
  }
  if (state.coordsError) return { ok: false, field: "geometry", error: state.coordsError };
  const polygon = closeRing(state.vertices);
  if (polygon) {
    body.geometry = { type: "Polygon", coordinates: polygon.coordinates as Position[][] };
    return { ok: true, value: body };
  }
  if (state.kept && state.vertices.length === 0) {
    body.geometry = state.kept;
    return { ok: true, value: body };
  }
  return { ok: false, field: "geometry", error: "A polygon needs at least 3 points: click the map or type them." };
}
