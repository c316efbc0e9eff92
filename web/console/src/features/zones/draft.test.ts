import { describe, expect, it } from "vitest";

import type { Zone } from "@panic-alert/shared/api/types";
import { EMPTY_FORM, type FormState, draftGeometries, formFromZone, formReducer, isDrawing, zoneBody } from "./draft";

const zone: Zone = {
  id: "z1",
  name: "Depot",
  kind: "service_area",
  active: false,
  geometry: { type: "Polygon", coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] },
  radius_m: null,
  created_at: "",
  updated_at: "",
  revision: 3,
  rules: { agent_ids: ["a"], dwell_s: null, end_check_in: false, notify_admins: false, notify_subject: false },
};

const run = (state: FormState, ...actions: Parameters<typeof formReducer>[1][]) => actions.reduce(formReducer, state);

describe("the zone form", () => {
  it("adds a vertex per click until the shape is finished, and fills the textarea", () => {
    let state = run(EMPTY_FORM, { type: "click", at: [0, 0] }, { type: "click", at: [1, 0] });
    expect(draftGeometries(state).map((g) => g.type)).toEqual(["LineString", "Point", "Point"]);
    state = run(state, { type: "finish" });
    expect(state.finished).toBe(false); // two points cannot be closed
    state = run(state, { type: "click", at: [1, 1] }, { type: "finish" }, { type: "click", at: [5, 5] });
    expect(state.vertices).toHaveLength(3);
    expect(isDrawing(state)).toBe(false);
    expect(state.coordsText).toBe("0,0\n1,0\n1,1");
    expect(draftGeometries(state)[0]?.type).toBe("Polygon");
    const body = zoneBody({ ...state, name: "A" });
    expect(body).toEqual({
      ok: true,
      value: {
        name: "A",
        kind: "safe",
        active: true,
        geometry: { type: "Polygon", coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] },
        rules: { notify_subject: false, notify_admins: false, end_check_in: false, agent_ids: null, dwell_s: null },
      },
    });
    expect(run(state, { type: "clear" }).vertices).toEqual([]);
  });

  it("takes typed coordinates, and says which line is wrong", () => {
    const typed = run(EMPTY_FORM, { type: "coords", text: "0,0\n2,0\n2,2\n0,0" });
    expect(typed.vertices).toHaveLength(4);
    expect(zoneBody(typed).ok).toBe(true);
    const wrong = run(typed, { type: "coords", text: "0,0\nx" });
    expect(wrong.vertices).toHaveLength(4);
    expect(zoneBody(wrong)).toEqual({ ok: false, field: "geometry", error: 'line 2: expected "longitude,latitude", got "x"' });
    expect(zoneBody(EMPTY_FORM)).toMatchObject({ ok: false, field: "geometry" });
  });

  it("sets a circle's centre by click or text", () => {
    const clicked = run(EMPTY_FORM, { type: "set", patch: { shape: "circle", radius: "100" } }, { type: "click", at: [3, 4] });
    expect(clicked.centreText).toBe("3,4");
    expect(draftGeometries(clicked).map((g) => g.type)).toEqual(["Polygon", "Point"]);
    expect(zoneBody(clicked)).toMatchObject({ ok: true, value: { geometry: { type: "Point", coordinates: [3, 4] }, radius_m: 100 } });
    const typed = run(clicked, { type: "centre", text: "5, 6" });
    expect(typed.centre).toEqual([5, 6]);
    expect(zoneBody(run(clicked, { type: "set", patch: { radius: "" } }))).toMatchObject({ ok: true });
  });

  it("loads a zone for editing and keeps its rules", () => {
    const state = formFromZone(zone);
    expect(state).toMatchObject({ name: "Depot", kind: "service_area", active: false, finished: true, vertices: [[0, 0], [1, 0], [1, 1]] });
    const body = zoneBody(state);
    expect(body.ok && body.value.rules?.agent_ids).toEqual(["a"]);
    const circle = formFromZone({ ...zone, geometry: { type: "Point", coordinates: [1, 2] }, radius_m: 30 });
    expect(circle).toMatchObject({ shape: "circle", centre: [1, 2], radius: "30" });
  });

  it("sends only the rules the kind takes", () => {
    const all = { notifySubject: true, notifyAdmins: true, endCheckIn: true, agentIds: ["a"] };
    const typed = run(EMPTY_FORM, { type: "coords", text: "0,0\n2,0\n2,2" }, { type: "set", patch: all });
    const rulesOf = (kind: FormState["kind"]) => {
      const body = zoneBody({ ...typed, kind });
      return body.ok ? body.value.rules : undefined;
    };
    expect(rulesOf("danger")).toMatchObject({ notify_subject: true, notify_admins: true, end_check_in: false, agent_ids: null });
    expect(rulesOf("safe")).toMatchObject({ notify_subject: false, notify_admins: false, end_check_in: true, agent_ids: null });
    expect(rulesOf("service_area")).toMatchObject({ notify_subject: false, end_check_in: false, agent_ids: ["a"] });
  });

  it("keeps a MultiPolygon it cannot redraw until a new shape is drawn", () => {
    const multi = formFromZone({ ...zone, geometry: { type: "MultiPolygon", coordinates: [zone.geometry.coordinates as [number, number][][]] } });
    expect(multi.kept?.type).toBe("MultiPolygon");
    expect(zoneBody(multi)).toMatchObject({ ok: true, value: { geometry: { type: "MultiPolygon" } } });
    expect(run(multi, { type: "click", at: [0, 0] }).kept).toBeNull();
  });
});
