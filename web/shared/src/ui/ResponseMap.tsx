// A small live map of one response: the person (red), the responder (blue)
// and the line between them. It frames both when they first show and
// whenever one leaves the view; the caller says the same in words beside it
// (the map is a picture, the text is what screen readers get).
import "maplibre-gl/dist/maplibre-gl.css";
import "./ui.css";
import type { GeoJSONSource, Map as MapLibreMap } from "maplibre-gl";
import { useEffect, useRef } from "react";

import type { Point } from "../live/position";
import { useBaseMap } from "../map/baseMap";
import { boundsOf, responseFeatures } from "../map/response";

const SOURCE = "response";

function prepare(map: MapLibreMap): void {
  map.addSource(SOURCE, { type: "geojson", data: responseFeatures(null, null) });
  map.addLayer({
    id: "response-route",
    type: "line",
    source: SOURCE,
    filter: ["==", ["get", "role"], "route"],
    paint: { "line-color": "#0b4f8a", "line-width": 4, "line-dasharray": [2, 1] },
  });
  map.addLayer({
    id: "response-points",
    type: "circle",
    source: SOURCE,
    filter: ["!=", ["get", "role"], "route"],
    paint: {
      "circle-radius": 9,
      "circle-color": ["match", ["get", "role"], "person", "#b3001b", "#0b4f8a"],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 3,
    },
  });
}

function inView(map: MapLibreMap, point: Point): boolean {
  return map.getBounds().contains([point.longitude, point.latitude]);
}

export function ResponseMap({ person, responder, label }: { person: Point | null; responder: Point | null; label: string }) {
  const container = useRef<HTMLDivElement>(null);
  const map = useBaseMap(container, prepare);
  const framedBoth = useRef(false);

  useEffect(() => {
    if (!map) return;
    void map.getSource<GeoJSONSource>(SOURCE)?.setData(responseFeatures(person, responder));
    const points = [person, responder].filter((p): p is Point => p !== null);
    const bounds = boundsOf(points);
    if (!bounds) return;
    const both = points.length === 2;
    if ((both && !framedBoth.current) || !points.every((p) => inView(map, p)) || map.getZoom() < 3) {
      map.fitBounds(bounds, { padding: 48, maxZoom: 16, duration: 0 });
      framedBoth.current = both;
    }
  }, [map, person, responder]);

  return <div ref={container} className="response-map" role="region" aria-label={label} tabIndex={0} />;
}
