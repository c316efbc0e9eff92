import type { GeoJSONSource, Map as MapLibreMap } from "maplibre-gl";
import { useEffect, useRef } from "react";

import { fleet, useLive } from "../../app/live";
import { isOpen } from "../../app/model";
import { selectAlert, useUi } from "../../app/ui";
import { useBaseMap } from "@panic-alert/shared/map/baseMap";
import { addZoneLayers, listZones, zoneFeatures } from "../../shared/map/zones";
import { useNow } from "../../shared/useNow";
import { agentFeatures, alertFeatures, boundsOfAlerts, summarise } from "./layers";

const AGENT_REDRAW_MS = 1000;

const STATUS_COLOURS = [
  "match",
  ["get", "status"],
  "escalated",
  "#b3001b",
  "dispatching",
  "#c75000",
  "assigned",
  "#1f5fbf",
  "en_route",
  "#6b2fa8",
  "on_scene",
  "#16703f",
  "#444444",
] as const;

/** A small arrow pointing north, rotated by each agent's heading. */
function arrowImage(): ImageData {
  const size = 20;
  const data = new Uint8ClampedArray(size * size * 4);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const half = (y / size) * (size / 2);
      const inside = y > 1 && y < size - 3 && Math.abs(x - size / 2) <= half;
      if (!inside) continue;
      const at = (y * size + x) * 4;
      data.set([20, 60, 120, 255], at);
    }
  }
  return new ImageData(data, size, size);
}

function addLiveLayers(map: MapLibreMap): void {
  // Zones first: drawn under the agents and alerts.
  addZoneLayers(map, "zones", { type: "FeatureCollection", features: [] });
  map.addImage("agent-arrow", arrowImage());
  map.addSource("agents", {
    type: "geojson",
    data: { type: "FeatureCollection", features: [] },
    cluster: true,
    clusterRadius: 40,
    clusterMaxZoom: 13,
    clusterProperties: { available: ["+", ["get", "available"]] },
  });
  map.addSource("alerts", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "agent-clusters",
    type: "circle",
    source: "agents",
    filter: ["has", "point_count"],
    paint: {
      "circle-color": ["case", [">", ["get", "available"], 0], "#2f7d4f", "#5a6470"],
      "circle-opacity": 0.55,
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1,
      "circle-radius": ["step", ["get", "point_count"], 8, 10, 12, 100, 17, 1000, 23],
    },
  });
  map.addLayer({
    id: "agents",
    type: "circle",
    source: "agents",
    filter: ["!", ["has", "point_count"]],
    paint: {
      "circle-radius": 5,
      "circle-color": [
        "match",
        ["get", "status"],
        "available",
        "#2f7d4f",
        "on_break",
        "#9a6b00",
        "#5a6470",
      ],
      "circle-opacity": ["case", ["==", ["get", "stale"], 1], 0.35, 0.95],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1,
    },
  });
  map.addLayer({
    id: "agent-headings",
    type: "symbol",
    source: "agents",
    filter: ["all", ["!", ["has", "point_count"]], ["==", ["get", "has_heading"], 1]],
    layout: {
      "icon-image": "agent-arrow",
      "icon-size": 0.6,
      "icon-rotate": ["get", "heading"],
      "icon-rotation-alignment": "map",
      "icon-allow-overlap": true,
      "icon-ignore-placement": true,
      "icon-offset": [0, -14],
    },
  });
  map.addLayer({
    id: "alert-halo",
    type: "circle",
    source: "alerts",
    filter: ["==", ["get", "prominent"], 1],
    paint: {
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 3, 8, 10, 17],
      "circle-color": STATUS_COLOURS as never,
      "circle-opacity": 0.25,
    },
  });
  map.addLayer({
    id: "alerts",
    type: "circle",
    source: "alerts",
    paint: {
      // Smaller when zoomed out, so a city's alerts stay apart; new ones larger.
      "circle-radius": [
        "interpolate",
        ["linear"],
        ["zoom"],
        3,
        ["case", ["==", ["get", "prominent"], 1], 5, 3],
        10,
        ["case", ["==", ["get", "prominent"], 1], 10, 7],
      ],
      "circle-color": STATUS_COLOURS as never,
      "circle-stroke-color": ["case", ["==", ["get", "covert"], 1], "#111111", "#ffffff"],
      "circle-stroke-width": ["case", ["==", ["get", "covert"], 1], 3, 1.5],
    },
  });
  map.on("click", "alerts", (event) => {
    const id = event.features?.[0]?.properties.id as unknown;
    if (typeof id === "string") selectAlert(id);
  });
  map.on("mouseenter", "alerts", () => (map.getCanvas().style.cursor = "pointer"));
  map.on("mouseleave", "alerts", () => (map.getCanvas().style.cursor = ""));
}

/** The live map: open alerts by status, the fleet clustered; positions from the store. */
export function LiveMap() {
  const container = useRef<HTMLDivElement>(null);
  const alerts = useLive((s) => s.alerts);
  const fleetVersion = useLive((s) => s.fleetVersion);
  const now = useNow(5000);
  const selected = useUi((s) => s.selectedAlertId);

  const map = useBaseMap(container, addLiveLayers);
  const resyncs = useLive((s) => s.resyncs);

  // Zones change rarely: read at each (re)connect of the socket.
  useEffect(() => {
    if (!map) return;
    let cancelled = false;
    listZones(20).then(
      (zones) => {
        if (!cancelled) void map.getSource<GeoJSONSource>("zones")?.setData(zoneFeatures(zones));
      },
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [map, resyncs]);

  useEffect(() => {
    if (!map) return;
    void map.getSource<GeoJSONSource>("alerts")?.setData(alertFeatures(Object.values(alerts), now));
    // What the map really drew, for whoever checks it (the browser tests):
    // the ids of the alerts rendered once the map has settled.
    const drawn = () => {
      const ids = map.queryRenderedFeatures({ layers: ["alerts"] }).map((f) => String(f.properties.id));
      container.current?.setAttribute("data-drawn-alerts", ids.join(" "));
    };
    map.once("idle", drawn);
    return () => {
      map.off("idle", drawn);
    };
  }, [map, alerts, now]);

  // The first picture after signing in shows where the open alerts are.
  const framed = useRef(false);
  useEffect(() => {
    if (!map || framed.current || resyncs === 0) return;
    framed.current = true;
    const bounds = boundsOfAlerts(Object.values(alerts));
    if (bounds) map.fitBounds(bounds, { padding: 60, maxZoom: 12, duration: 0 });
  }, [map, resyncs, alerts]);

  useEffect(() => {
    const alert = selected ? alerts[selected] : undefined;
    if (map && alert) map.easeTo({ center: [alert.longitude, alert.latitude], zoom: Math.max(map.getZoom(), 12) });
    // Only when the selection changes, not on every update of the alert.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [map, selected]);

  // Agents are redrawn at most once a second (the server's default feed
  // rate), however often fleet frames arrive: 5,000 moving points then cost
  // one GeoJSON rebuild and one worker update a second.
  const lastDrawn = useRef(0);
  useEffect(() => {
    if (!map) return;
    const wait = Math.max(0, lastDrawn.current + AGENT_REDRAW_MS - performance.now());
    const timer = setTimeout(() => {
      lastDrawn.current = performance.now();
      void map.getSource<GeoJSONSource>("agents")?.setData(agentFeatures(fleet.values(), Date.now()));
    }, wait);
    return () => clearTimeout(timer);
  }, [map, fleetVersion, now]);

  const summary = summarise(fleet.values(), now);
  const open = Object.values(alerts).filter((a) => isOpen(a.status)).length;
  return (
    // MapLibre names its canvas: the region "Map" (keyboard: arrows pan, +/- zoom).
    <section className="map">
      <div ref={container} className="map-canvas" data-testid="map-canvas" />
      <p className="map-summary" aria-live="off">
        {open} open {open === 1 ? "alert" : "alerts"} on the map; {summary.onDuty} {summary.onDuty === 1 ? "responder" : "responders"} on duty, {summary.available} available
        {summary.stale > 0 ? `, ${summary.stale} not heard from in a minute` : ""}.
      </p>
    </section>
  );
}
